-- Aggregates of the windows in touched_windows(window_start, window_end) and the casts in
-- touched_casts(hash), recomputed from the clean tables (aggregates.py says which windows and
-- casts a batch touches), so aggregates stay right whichever order batches and windows run
-- in. Top-N lists keep 25 a window.

-- The touched windows' casts and live reactions, read once: each aggregate below reads these
-- small tables instead of evaluating the public views once per subquery.
CREATE OR REPLACE TEMP TABLE window_casts AS
SELECT w.window_start AS agg_window, c.*
FROM touched_windows w
JOIN casts c ON c."timestamp" >= w.window_start AND c."timestamp" < w.window_end;

-- The reactions view ranks every reaction message of the lake; a reaction counts in a window
-- when its latest message for (fid, type, target) is an add stamped in that window, so only
-- the keys with a message in the touched windows can count: rank just those.
CREATE OR REPLACE TEMP TABLE window_reactions AS
WITH window_keys AS (
    SELECT DISTINCT m.fid, m.reaction_type, m.target_hash
    FROM touched_windows w
    JOIN reaction_messages m ON m."timestamp" >= w.window_start AND m."timestamp" < w.window_end
), latest AS (
    SELECT m.reaction_type, m.message_type, m."timestamp", row_number() OVER (
        PARTITION BY m.fid, m.reaction_type, m.target_hash
        ORDER BY m."timestamp" DESC, m.source_position DESC) AS latest
    FROM reaction_messages m
    SEMI JOIN window_keys k
      ON m.fid = k.fid AND m.reaction_type = k.reaction_type AND m.target_hash = k.target_hash
)
SELECT w.window_start AS agg_window, r.reaction_type
FROM touched_windows w
JOIN latest r ON r."timestamp" >= w.window_start AND r."timestamp" < w.window_end
WHERE r.latest = 1 AND r.message_type = 'MESSAGE_TYPE_REACTION_ADD';

DELETE FROM hourly_activity WHERE window_start IN (SELECT window_start FROM touched_windows);

INSERT INTO hourly_activity BY NAME
SELECT
    w.window_start,
    w.window_end,
    (SELECT count(*) FROM window_casts c WHERE c.agg_window = w.window_start) AS casts,
    (SELECT count(*) FROM window_casts c
      WHERE c.agg_window = w.window_start AND NOT c.is_reply) AS top_level_casts,
    (SELECT count(*) FROM window_casts c
      WHERE c.agg_window = w.window_start AND c.is_reply) AS replies,
    (SELECT count(*) FROM window_reactions r WHERE r.agg_window = w.window_start) AS reactions,
    (SELECT count(*) FROM window_reactions r
      WHERE r.agg_window = w.window_start AND r.reaction_type = 'like') AS likes,
    (SELECT count(*) FROM window_reactions r
      WHERE r.agg_window = w.window_start AND r.reaction_type = 'recast') AS recasts,
    (SELECT count(DISTINCT fid) FROM window_casts c
      WHERE c.agg_window = w.window_start) AS distinct_authors
FROM touched_windows w;

DELETE FROM top_authors WHERE window_start IN (SELECT window_start FROM touched_windows);

INSERT INTO top_authors BY NAME
SELECT window_start, rank, fid, username, casts, replies
FROM (
    SELECT
        c.agg_window AS window_start,
        c.fid,
        any_value(c.username) AS username,
        count(*) AS casts,
        count(*) FILTER (WHERE c.is_reply) AS replies,
        row_number() OVER (PARTITION BY c.agg_window ORDER BY count(*) DESC, c.fid) AS rank
    FROM window_casts c
    GROUP BY c.agg_window, c.fid
)
WHERE rank <= 25;

DELETE FROM most_replied_to WHERE window_start IN (SELECT window_start FROM touched_windows);

INSERT INTO most_replied_to BY NAME
SELECT window_start, rank, fid, username, replies_received
FROM (
    SELECT
        c.agg_window AS window_start,
        c.parent_fid AS fid,
        any_value(u.username) AS username,
        count(*) AS replies_received,
        row_number() OVER (PARTITION BY c.agg_window ORDER BY count(*) DESC, c.parent_fid) AS rank
    FROM window_casts c
    LEFT JOIN users u ON u.fid = c.parent_fid
    WHERE c.parent_fid IS NOT NULL
    GROUP BY c.agg_window, c.parent_fid
)
WHERE rank <= 25;

DELETE FROM top_terms WHERE window_start IN (SELECT window_start FROM touched_windows);

INSERT INTO top_terms BY NAME
WITH tokens AS (
    SELECT c.agg_window AS window_start, c.fid,
           unnest(regexp_split_to_array(replace(lower(c.text), '’', ''''), '\s+')) AS raw_token
    FROM window_casts c
), cleaned AS (
    -- strip surrounding punctuation, keep @mentions and #hashtags, drop links and numbers
    SELECT window_start, fid,
           regexp_replace(regexp_replace(raw_token, '^[^a-z0-9@#]+', ''), '[^a-z0-9]+$', '') AS term
    FROM tokens
    WHERE raw_token NOT LIKE '%://%' AND raw_token NOT LIKE 'www.%'
), classified AS (
    SELECT window_start, fid, term,
           CASE WHEN term LIKE '@%' THEN 'mention'
                WHEN term LIKE '#%' THEN 'hashtag'
                ELSE 'term' END AS kind
    FROM cleaned
    WHERE length(term) >= 3
      AND regexp_matches(term, '[a-z]')
      AND term NOT IN (SELECT word FROM stopwords)
)
SELECT window_start, kind, rank, term, uses, authors
FROM (
    SELECT window_start, kind, term, count(*) AS uses, count(DISTINCT fid) AS authors,
           row_number() OVER (PARTITION BY window_start, kind
                              ORDER BY count(*) DESC, count(DISTINCT fid) DESC, term) AS rank
    FROM classified
    GROUP BY window_start, kind, term
)
WHERE rank <= 25;

DELETE FROM cast_engagement WHERE hash IN (SELECT hash FROM touched_casts);

-- Only the touched casts' replies and reaction messages are read: the public views would
-- first rank every reaction message and resolve every user of the lake (1 s at 1M events
-- for a handful of casts). The same rules as the views: a removed reply does not count, and
-- a reaction counts while its latest message for (fid, type, target) is an add (the target
-- is part of that key, so filtering on it first changes nothing).
INSERT INTO cast_engagement BY NAME
WITH replies_of AS (
    SELECT a.parent_hash AS hash, count(DISTINCT a.hash) AS replies_seen,
           any_value(a.parent_fid) AS parent_fid
    FROM cast_adds a
    WHERE a.parent_hash IN (SELECT hash FROM touched_casts)
      AND a.hash NOT IN (SELECT target_hash FROM cast_removes)
    GROUP BY a.parent_hash
), latest_reactions AS (
    SELECT *, row_number() OVER (
        PARTITION BY fid, reaction_type, target_hash
        ORDER BY "timestamp" DESC, source_position DESC) AS latest
    FROM reaction_messages
    WHERE target_hash IN (SELECT hash FROM touched_casts)
), reactions_of AS (
    SELECT target_hash AS hash,
           count(DISTINCT hash) FILTER (WHERE reaction_type = 'recast') AS recasts_seen,
           count(DISTINCT hash) FILTER (WHERE reaction_type = 'like') AS likes_seen,
           any_value(target_fid) AS target_fid
    FROM latest_reactions
    WHERE latest = 1 AND message_type = 'MESSAGE_TYPE_REACTION_ADD'
    GROUP BY target_hash
)
SELECT
    t.hash,
    coalesce(a.fid, rp.parent_fid, r.target_fid) AS fid,
    a."timestamp",
    coalesce(rp.replies_seen, 0) AS replies_seen,
    coalesce(r.recasts_seen, 0) AS recasts_seen,
    coalesce(r.likes_seen, 0) AS likes_seen,
    a.snapshot_replies,
    a.snapshot_reactions,
    a.snapshot_recasts
FROM (SELECT DISTINCT hash FROM touched_casts) t
LEFT JOIN cast_adds a ON a.hash = t.hash
LEFT JOIN replies_of rp ON rp.hash = t.hash
LEFT JOIN reactions_of r ON r.hash = t.hash
-- a removed cast has no engagement
WHERE t.hash NOT IN (SELECT target_hash FROM cast_removes);

DROP TABLE window_casts;
DROP TABLE window_reactions;

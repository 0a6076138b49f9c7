-- Aggregates of the windows in touched_windows(window_start, window_end) and the casts in
-- touched_casts(hash), recomputed from the clean tables (aggregates.py says which windows and
-- casts a batch touches), so aggregates stay right whichever order batches and windows run
-- in. Top-N lists keep 25 a window.

-- The touched windows' casts and live reactions, read through the public views once: each
-- aggregate below reads these small tables instead of evaluating the views (the reactions
-- view ranks every reaction message of the lake) once per subquery.
CREATE OR REPLACE TEMP TABLE window_casts AS
SELECT w.window_start AS agg_window, c.*
FROM touched_windows w
JOIN casts c ON c."timestamp" >= w.window_start AND c."timestamp" < w.window_end;

CREATE OR REPLACE TEMP TABLE window_reactions AS
SELECT w.window_start AS agg_window, r.reaction_type
FROM touched_windows w
JOIN reactions r ON r."timestamp" >= w.window_start AND r."timestamp" < w.window_end;

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

INSERT INTO cast_engagement BY NAME
SELECT
    t.hash,
    coalesce(c.fid, any_value(rp.parent_fid), any_value(r.target_fid)) AS fid,
    c."timestamp",
    count(DISTINCT rp.hash) AS replies_seen,
    count(DISTINCT r.hash) FILTER (WHERE r.reaction_type = 'recast') AS recasts_seen,
    count(DISTINCT r.hash) FILTER (WHERE r.reaction_type = 'like') AS likes_seen,
    any_value(a.snapshot_replies) AS snapshot_replies,
    any_value(a.snapshot_reactions) AS snapshot_reactions,
    any_value(a.snapshot_recasts) AS snapshot_recasts
FROM touched_casts t
LEFT JOIN casts c ON c.hash = t.hash
LEFT JOIN cast_adds a ON a.hash = t.hash
LEFT JOIN casts rp ON rp.parent_hash = t.hash
LEFT JOIN reactions r ON r.target_hash = t.hash
WHERE t.hash NOT IN (SELECT target_hash FROM cast_removes)  -- a removed cast has no engagement
GROUP BY t.hash, c.fid, c."timestamp";

DROP TABLE window_casts;
DROP TABLE window_reactions;

-- Aggregates of the windows in touched_windows(window_start, window_end) and the casts in
-- touched_casts(hash), recomputed from the clean tables (aggregates.py says which windows and
-- casts a batch touches), so aggregates stay right whichever order batches and windows run
-- in. Top-N lists keep 25 a window.
--
-- This script only reads the lake: it computes every row it would write into temp tables
-- (new_*), and aggregates_apply.sql writes them. So the reading, which grows with the windows
-- refreshed, can run outside the transaction that writes (stream_job: beside the batches'
-- commits, which a long writing transaction on a SQLite catalog would lose every time to).
--
-- First the stage's state (schema.sql) for what the batch folds in: batch_casts(hash), its
-- cast adds, and batch_reaction_keys(fid, reaction_type, target_hash), the reaction keys with
-- a new message. The state keeps a batch's cost to its own messages: a window's terms are
-- summed from cast_terms instead of tokenizing every text of the window again, and its
-- reactions read reaction_state instead of ranking every reaction message of the window.
-- Below, reaction_state_now (a view) and cast_terms_now (a CTE) are the state as the batch
-- leaves it.

CREATE OR REPLACE TEMP TABLE new_cast_terms AS
WITH tokens AS (
    SELECT c.hash, c.fid, c."timestamp",
           unnest(regexp_split_to_array(replace(lower(c.text), '’', ''''), '\s+')) AS raw_token
    FROM cast_adds c
    WHERE c.hash IN (SELECT hash FROM batch_casts)
), cleaned AS (
    -- strip surrounding punctuation, keep @mentions and #hashtags, drop links and numbers
    SELECT hash, fid, "timestamp",
           regexp_replace(regexp_replace(raw_token, '^[^a-z0-9@#]+', ''), '[^a-z0-9]+$', '') AS term
    FROM tokens
    WHERE raw_token NOT LIKE '%://%' AND raw_token NOT LIKE 'www.%'
)
SELECT hash, any_value(fid) AS fid, any_value("timestamp") AS "timestamp",
       CASE WHEN term LIKE '@%' THEN 'mention'
            WHEN term LIKE '#%' THEN 'hashtag'
            ELSE 'term' END AS kind,
       term, count(*) AS uses
FROM cleaned
WHERE length(term) >= 3
  AND regexp_matches(term, '[a-z]')
  AND term NOT IN (SELECT word FROM stopwords)
GROUP BY hash, kind, term;

-- A reaction counts while its latest message for (fid, type, target) is an add (the rule of
-- the public reactions view).
CREATE OR REPLACE TEMP TABLE new_reaction_state AS
SELECT fid, reaction_type, target_hash, target_fid, hash, message_type, "timestamp",
       source_position
FROM (
    SELECT m.*, row_number() OVER (
        PARTITION BY m.fid, m.reaction_type, m.target_hash
        ORDER BY m."timestamp" DESC, m.source_position DESC) AS latest
    FROM reaction_messages m
    SEMI JOIN batch_reaction_keys k
      ON m.fid = k.fid
     AND m.reaction_type IS NOT DISTINCT FROM k.reaction_type
     AND m.target_hash IS NOT DISTINCT FROM k.target_hash
)
WHERE latest = 1;

-- The touched windows' live casts (the columns the aggregates use, no text) and counting
-- reactions, read once: each aggregate below reads these small tables. Usernames are
-- resolved for the ranked rows only.
CREATE OR REPLACE TEMP TABLE window_casts AS
SELECT w.window_start AS agg_window, c.hash, c.fid, c.author_username, c.parent_fid,
       c.parent_hash IS NOT NULL AS is_reply
FROM touched_windows w
JOIN cast_adds c ON c."timestamp" >= w.window_start AND c."timestamp" < w.window_end
WHERE c.hash NOT IN (SELECT target_hash FROM cast_removes);

CREATE OR REPLACE TEMP VIEW reaction_state_now AS
SELECT s.fid, s.reaction_type, s.target_hash, s.target_fid, s.hash, s.message_type,
       s."timestamp"
FROM reaction_state s
WHERE NOT EXISTS (
    SELECT 1 FROM batch_reaction_keys k
    WHERE k.fid = s.fid
      AND k.reaction_type IS NOT DISTINCT FROM s.reaction_type
      AND k.target_hash IS NOT DISTINCT FROM s.target_hash)
UNION ALL
SELECT fid, reaction_type, target_hash, target_fid, hash, message_type, "timestamp"
FROM new_reaction_state;

CREATE OR REPLACE TEMP TABLE window_reactions AS
SELECT w.window_start AS agg_window, r.reaction_type
FROM touched_windows w
JOIN reaction_state_now r ON r."timestamp" >= w.window_start AND r."timestamp" < w.window_end
WHERE r.message_type = 'MESSAGE_TYPE_REACTION_ADD';

CREATE OR REPLACE TEMP TABLE new_hourly_activity AS
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

CREATE OR REPLACE TEMP TABLE new_top_authors AS
SELECT t.window_start, t.rank, t.fid, coalesce(t.author_username, u.username) AS username,
       t.casts, t.replies
FROM (
    SELECT
        c.agg_window AS window_start,
        c.fid,
        any_value(c.author_username) AS author_username,
        count(*) AS casts,
        count(*) FILTER (WHERE c.is_reply) AS replies,
        row_number() OVER (PARTITION BY c.agg_window ORDER BY count(*) DESC, c.fid) AS rank
    FROM window_casts c
    GROUP BY c.agg_window, c.fid
) t
LEFT JOIN users u ON u.fid = t.fid
WHERE t.rank <= 25;

CREATE OR REPLACE TEMP TABLE new_most_replied_to AS
SELECT t.window_start, t.rank, t.fid, u.username, t.replies_received
FROM (
    SELECT
        c.agg_window AS window_start,
        c.parent_fid AS fid,
        count(*) AS replies_received,
        row_number() OVER (PARTITION BY c.agg_window ORDER BY count(*) DESC, c.parent_fid) AS rank
    FROM window_casts c
    WHERE c.parent_fid IS NOT NULL
    GROUP BY c.agg_window, c.parent_fid
) t
LEFT JOIN users u ON u.fid = t.fid
WHERE t.rank <= 25;

CREATE OR REPLACE TEMP TABLE new_top_terms AS
WITH cast_terms_now AS (
    SELECT hash, fid, "timestamp", kind, term, uses FROM cast_terms
    WHERE hash NOT IN (SELECT hash FROM batch_casts)
    UNION ALL
    SELECT hash, fid, "timestamp", kind, term, uses FROM new_cast_terms
)
SELECT window_start, kind, rank, term, uses, authors
FROM (
    SELECT w.window_start, t.kind, t.term, sum(t.uses)::BIGINT AS uses,
           count(DISTINCT t.fid) AS authors,
           row_number() OVER (PARTITION BY w.window_start, t.kind
                              ORDER BY sum(t.uses) DESC, count(DISTINCT t.fid) DESC, t.term) AS rank
    FROM touched_windows w
    JOIN cast_terms_now t ON t."timestamp" >= w.window_start AND t."timestamp" < w.window_end
    WHERE t.hash IN (SELECT hash FROM window_casts)  -- live casts only
    GROUP BY w.window_start, t.kind, t.term
)
WHERE rank <= 25;

-- Only the touched casts' replies and reaction keys are read: the public views would first
-- rank every reaction message and resolve every user of the lake (1 s at 1M events for a
-- handful of casts). The same rules as the views: a removed reply does not count, and a
-- reaction counts while its latest message is an add (reaction_state holds that message).
CREATE OR REPLACE TEMP TABLE new_cast_engagement AS
WITH replies_of AS (
    SELECT a.parent_hash AS hash, count(DISTINCT a.hash) AS replies_seen,
           any_value(a.parent_fid) AS parent_fid
    FROM cast_adds a
    WHERE a.parent_hash IN (SELECT hash FROM touched_casts)
      AND a.hash NOT IN (SELECT target_hash FROM cast_removes)
    GROUP BY a.parent_hash
), reactions_of AS (
    SELECT target_hash AS hash,
           count(DISTINCT hash) FILTER (WHERE reaction_type = 'recast') AS recasts_seen,
           count(DISTINCT hash) FILTER (WHERE reaction_type = 'like') AS likes_seen,
           any_value(target_fid) AS target_fid
    FROM reaction_state_now
    WHERE target_hash IN (SELECT hash FROM touched_casts)
      AND message_type = 'MESSAGE_TYPE_REACTION_ADD'
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

DROP VIEW reaction_state_now;

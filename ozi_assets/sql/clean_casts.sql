-- CAST_ADD and CAST_REMOVE messages of the batch (view batch_messages), one row a hash, staged
-- for cast_adds and cast_removes; clean.py merges them (the earliest copy in the log wins).
CREATE OR REPLACE TEMP TABLE staged_cast_adds AS
WITH messages AS (
    -- The scalar fields in one call with a list of paths: one parse a message for all of
    -- them, where one ->> a field parsed it once a field (about twice the time on 40k
    -- synthetic casts here, same rows). Mentions and embeds keep their own calls below.
    SELECT *,
        json_extract_string(msg, [
            '$.hash',                                   -- 1
            '$.data.fid',                               -- 2
            '$.hydrated.username',                      -- 3
            '$.hydrated.displayName',                   -- 4
            '$.data.castAddBody.text',                  -- 5
            '$.data.timestamp',                         -- 6
            '$.data.castAddBody.parentCastId.hash',     -- 7
            '$.data.castAddBody.parentCastId.fid',      -- 8
            '$.data.castAddBody.parentUrl',             -- 9
            '$.hydrated.threadHash',                    -- 10
            '$.hydrated.counts.replies',                -- 11
            '$.hydrated.counts.reactions',              -- 12
            '$.hydrated.counts.recasts'                 -- 13
        ]) AS s
    FROM batch_messages
    WHERE message_type = 'MESSAGE_TYPE_CAST_ADD'
)
SELECT
    s[1]                                                AS hash,
    s[2]::BIGINT                                        AS fid,
    s[3]                                                AS author_username,
    s[4]                                                AS author_display_name,
    s[5]                                                AS text,
    farcaster_time(s[6])                                AS "timestamp",
    s[7]                                                AS parent_hash,
    TRY_CAST(s[8] AS BIGINT)                            AS parent_fid,
    s[9]                                                AS parent_url,
    -- the thread root: the source's when sent, the cast itself for a top-level cast
    coalesce(s[10], CASE WHEN s[7] IS NULL THEN s[1] END) AS thread_hash,
    TRY_CAST(msg -> '$.data.castAddBody.mentions' AS BIGINT[]) AS mentions,
    -- a cast without embeds (no key, null, not a list) has none: [], never NULL
    TRY_CAST(json_extract_string(msg, '$.data.castAddBody.embeds[*].url') AS VARCHAR[]) AS embeds,
    TRY_CAST(s[11] AS BIGINT)                           AS snapshot_replies,
    TRY_CAST(s[12] AS BIGINT)                           AS snapshot_reactions,
    TRY_CAST(s[13] AS BIGINT)                           AS snapshot_recasts,
    window_start,
    source_position
FROM messages
QUALIFY row_number() OVER (PARTITION BY hash ORDER BY source_position) = 1;

CREATE OR REPLACE TEMP TABLE staged_cast_removes AS
WITH messages AS (
    SELECT *,
        json_extract_string(msg, [
            '$.hash', '$.data.fid', '$.data.castRemoveBody.targetHash', '$.data.timestamp'
        ]) AS s
    FROM batch_messages
    WHERE message_type = 'MESSAGE_TYPE_CAST_REMOVE'
)
SELECT
    s[1]                                                AS hash,
    s[2]::BIGINT                                        AS fid,
    s[3]                                                AS target_hash,
    farcaster_time(s[4])                                AS "timestamp",
    window_start,
    source_position
FROM messages
QUALIFY row_number() OVER (PARTITION BY hash ORDER BY source_position) = 1;

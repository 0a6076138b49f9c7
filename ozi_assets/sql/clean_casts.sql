-- CAST_ADD and CAST_REMOVE messages of the batch (view batch_messages), one row a hash, staged
-- for cast_adds and cast_removes; clean.py merges them (the earliest copy in the log wins).
CREATE OR REPLACE TEMP TABLE staged_cast_adds AS
WITH messages AS (
    SELECT * FROM batch_messages
    WHERE message_type = 'MESSAGE_TYPE_CAST_ADD'
)
SELECT
    msg ->> '$.hash'                                           AS hash,
    (msg ->> '$.data.fid')::BIGINT                             AS fid,
    msg ->> '$.hydrated.username'                              AS author_username,
    msg ->> '$.hydrated.displayName'                           AS author_display_name,
    msg ->> '$.data.castAddBody.text'                          AS text,
    farcaster_time(msg ->> '$.data.timestamp')     AS "timestamp",
    msg ->> '$.data.castAddBody.parentCastId.hash'             AS parent_hash,
    TRY_CAST(msg ->> '$.data.castAddBody.parentCastId.fid' AS BIGINT) AS parent_fid,
    msg ->> '$.data.castAddBody.parentUrl'                     AS parent_url,
    -- the thread root: the source's when sent, the cast itself for a top-level cast
    coalesce(msg ->> '$.hydrated.threadHash',
             CASE WHEN msg ->> '$.data.castAddBody.parentCastId.hash' IS NULL
                  THEN msg ->> '$.hash' END)                   AS thread_hash,
    TRY_CAST(msg -> '$.data.castAddBody.mentions' AS BIGINT[]) AS mentions,
    TRY_CAST(json_extract_string(msg, '$.data.castAddBody.embeds[*].url') AS VARCHAR[]) AS embeds,
    TRY_CAST(msg ->> '$.hydrated.counts.replies' AS BIGINT)    AS snapshot_replies,
    TRY_CAST(msg ->> '$.hydrated.counts.reactions' AS BIGINT)  AS snapshot_reactions,
    TRY_CAST(msg ->> '$.hydrated.counts.recasts' AS BIGINT)    AS snapshot_recasts,
    window_start,
    source_position
FROM messages
QUALIFY row_number() OVER (PARTITION BY hash ORDER BY source_position) = 1;

CREATE OR REPLACE TEMP TABLE staged_cast_removes AS
WITH messages AS (
    SELECT * FROM batch_messages
    WHERE message_type = 'MESSAGE_TYPE_CAST_REMOVE'
)
SELECT
    msg ->> '$.hash'                                       AS hash,
    (msg ->> '$.data.fid')::BIGINT                         AS fid,
    msg ->> '$.data.castRemoveBody.targetHash'             AS target_hash,
    farcaster_time(msg ->> '$.data.timestamp') AS "timestamp",
    window_start,
    source_position
FROM messages
QUALIFY row_number() OVER (PARTITION BY hash ORDER BY source_position) = 1;

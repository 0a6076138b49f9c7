-- REACTION_ADD / REACTION_REMOVE messages of the batch (view batch_messages), one row a hash,
-- staged for reaction_messages; clean.py merges them (the earliest copy in the log wins).
CREATE OR REPLACE TEMP TABLE staged_reaction_messages AS
WITH messages AS (
    -- one parse a message (see clean_casts.sql)
    SELECT *,
        json_extract_string(msg, [
            '$.hash',                                   -- 1
            '$.data.reactionBody.type',                 -- 2
            '$.data.fid',                               -- 3
            '$.hydrated.username',                      -- 4
            '$.data.reactionBody.targetCastId.hash',    -- 5
            '$.data.reactionBody.targetCastId.fid',     -- 6
            '$.data.timestamp'                          -- 7
        ]) AS s
    FROM batch_messages
    WHERE message_type IN ('MESSAGE_TYPE_REACTION_ADD', 'MESSAGE_TYPE_REACTION_REMOVE')
)
SELECT
    s[1]                                                AS hash,
    message_type,
    CASE s[2]
        WHEN 'REACTION_TYPE_LIKE' THEN 'like'
        WHEN 'REACTION_TYPE_RECAST' THEN 'recast' END   AS reaction_type,
    s[3]::BIGINT                                        AS fid,
    s[4]                                                AS username,
    s[5]                                                AS target_hash,
    TRY_CAST(s[6] AS BIGINT)                            AS target_fid,
    farcaster_time(s[7])                                AS "timestamp",
    window_start,
    source_position
FROM messages
QUALIFY row_number() OVER (PARTITION BY hash ORDER BY source_position) = 1;

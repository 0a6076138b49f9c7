-- REACTION_ADD / REACTION_REMOVE messages of the batch (view batch_messages), one row a hash,
-- staged for reaction_messages; clean.py merges them (the earliest copy in the log wins).
CREATE OR REPLACE TEMP TABLE staged_reaction_messages AS
WITH messages AS (
    SELECT * FROM batch_messages
    WHERE message_type IN ('MESSAGE_TYPE_REACTION_ADD', 'MESSAGE_TYPE_REACTION_REMOVE')
)
SELECT
    msg ->> '$.hash'                                            AS hash,
    message_type,
    CASE msg ->> '$.data.reactionBody.type'
        WHEN 'REACTION_TYPE_LIKE' THEN 'like'
        WHEN 'REACTION_TYPE_RECAST' THEN 'recast' END           AS reaction_type,
    (msg ->> '$.data.fid')::BIGINT                              AS fid,
    msg ->> '$.hydrated.username'                               AS username,
    msg ->> '$.data.reactionBody.targetCastId.hash'             AS target_hash,
    TRY_CAST(msg ->> '$.data.reactionBody.targetCastId.fid' AS BIGINT) AS target_fid,
    farcaster_time(msg ->> '$.data.timestamp')      AS "timestamp",
    window_start,
    source_position
FROM messages
QUALIFY row_number() OVER (PARTITION BY hash ORDER BY source_position) = 1;

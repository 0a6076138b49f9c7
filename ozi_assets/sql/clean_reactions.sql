-- REACTION_ADD / REACTION_REMOVE messages of one window ($window_start) → reaction_messages.
INSERT INTO reaction_messages BY NAME
WITH messages AS (
    SELECT * FROM decoded_messages
    WHERE window_start = $window_start AND message_type IN ('MESSAGE_TYPE_REACTION_ADD', 'MESSAGE_TYPE_REACTION_REMOVE')
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
QUALIFY row_number() OVER (PARTITION BY hash ORDER BY source_position) = 1
ON CONFLICT (hash) DO UPDATE SET
    message_type = excluded.message_type, reaction_type = excluded.reaction_type,
    fid = excluded.fid, username = excluded.username, target_hash = excluded.target_hash,
    target_fid = excluded.target_fid, "timestamp" = excluded."timestamp",
    window_start = excluded.window_start, source_position = excluded.source_position
WHERE excluded.source_position < reaction_messages.source_position;

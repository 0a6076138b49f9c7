-- Decode one window's messages (the registered Arrow table raw_batch) into raw_events.
-- Structural problems only: a message that is not a well-formed protocol message is
-- dead-lettered with the first reason that applies. Data-quality rules (fid > 0, sizes, …)
-- are asset checks on the clean tables, not reasons to drop a message.
INSERT INTO raw_events
WITH decoded AS (
    SELECT *, try(decode(message_value)) AS body FROM raw_batch
), parsed AS (
    SELECT *, CASE WHEN json_valid(body) THEN body::JSON END AS msg FROM decoded
), typed AS (
    SELECT *, msg ->> '$.data.type' AS mtype, msg ->> '$.hash' AS mhash FROM parsed
)
SELECT
    topic,
    kafka_partition,
    kafka_offset,
    make_timestamptz(timestamp_ms * 1000),
    make_timestamptz(window_ms * 1000),
    make_timestamptz(event_window_ms * 1000),
    message_key,
    message_value,
    mtype,
    mhash,
    CASE
        WHEN body IS NULL THEN 'value is not UTF-8 text'
        WHEN msg IS NULL THEN 'value is not valid JSON'
        WHEN json_type(msg) <> 'OBJECT' THEN 'value is not a JSON object'
        WHEN mhash IS NULL THEN 'missing hash'
        WHEN NOT regexp_full_match(mhash, '0x([0-9a-f]{40}|[0-9a-f]{64})')
            THEN 'hash is not lowercase 0x-hex of 20 or 32 bytes: ' || left(mhash, 80)
        WHEN json_type(msg, '$.data') IS DISTINCT FROM 'OBJECT' THEN 'missing data object'
        WHEN mtype IS NULL THEN 'missing data.type'
        WHEN mtype NOT IN (
            'MESSAGE_TYPE_CAST_ADD', 'MESSAGE_TYPE_CAST_REMOVE', 'MESSAGE_TYPE_REACTION_ADD',
            'MESSAGE_TYPE_REACTION_REMOVE', 'MESSAGE_TYPE_USER_DATA_ADD', 'MESSAGE_TYPE_LINK_ADD')
            THEN 'unknown message type: ' || left(mtype, 80)
        WHEN json_type(msg, '$.data.fid') NOT IN ('UBIGINT', 'BIGINT')
            THEN 'data.fid is missing or not an integer'
        WHEN json_type(msg, '$.data.timestamp') NOT IN ('UBIGINT', 'BIGINT')
            THEN 'data.timestamp is missing or not an integer'
        WHEN mtype = 'MESSAGE_TYPE_CAST_ADD'
             AND json_type(msg, '$.data.castAddBody.text') IS DISTINCT FROM 'VARCHAR'
            THEN 'cast add without castAddBody.text'
        WHEN mtype = 'MESSAGE_TYPE_CAST_ADD'
             AND json_type(msg, '$.data.castAddBody.parentCastId') = 'OBJECT'
             AND json_type(msg, '$.data.castAddBody.parentCastId.hash') IS DISTINCT FROM 'VARCHAR'
            THEN 'cast add whose parentCastId has no hash'
        WHEN mtype = 'MESSAGE_TYPE_CAST_REMOVE'
             AND json_type(msg, '$.data.castRemoveBody.targetHash') IS DISTINCT FROM 'VARCHAR'
            THEN 'cast remove without castRemoveBody.targetHash'
        WHEN mtype IN ('MESSAGE_TYPE_REACTION_ADD', 'MESSAGE_TYPE_REACTION_REMOVE')
             AND coalesce(msg ->> '$.data.reactionBody.type', '')
                 NOT IN ('REACTION_TYPE_LIKE', 'REACTION_TYPE_RECAST')
            THEN 'reaction without a like or recast reactionBody.type'
        WHEN mtype IN ('MESSAGE_TYPE_REACTION_ADD', 'MESSAGE_TYPE_REACTION_REMOVE')
             AND json_type(msg, '$.data.reactionBody.targetCastId.hash') IS DISTINCT FROM 'VARCHAR'
            THEN 'reaction without reactionBody.targetCastId.hash'
        WHEN mtype = 'MESSAGE_TYPE_USER_DATA_ADD'
             AND json_type(msg, '$.data.userDataBody.type') IS DISTINCT FROM 'VARCHAR'
            THEN 'user data without userDataBody.type'
        WHEN mtype = 'MESSAGE_TYPE_LINK_ADD'
             AND json_type(msg, '$.data.linkBody.targetFid') NOT IN ('UBIGINT', 'BIGINT')
            THEN 'link without linkBody.targetFid'
    END
FROM typed;

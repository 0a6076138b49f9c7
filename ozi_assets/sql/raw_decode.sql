-- Decode a batch of messages (the registered Arrow table raw_batch) into decoded_batch, the
-- rows raw.py appends to raw_events. A message is dead-lettered with the first reason that
-- applies when it is not a well-formed protocol message or holds a value the clean tables
-- would refuse (out-of-range fid or timestamp, text over the protocol's limit, wrong types):
-- data in a log cannot be fixed, so no single message may make a window fail. $max_skew_s
-- bounds how far a message's own timestamp may lie ahead of its Kafka timestamp.
--
-- Each JSON function call parses its document again, so every field a rule needs is read in
-- two calls with lists of paths (t: the JSON types, s: the values as text), not one call a
-- rule: half the time of one call a rule on 50k synthetic messages here (0.7 s against 1.7 s).
-- The parsed document stays in decoded_batch (column msg, not stored in raw_events) for the
-- clean stage, which reads a batch's messages from there in the same transaction.
CREATE OR REPLACE TEMP TABLE decoded_batch AS
WITH decoded AS (
    SELECT *, try(decode(message_value)) AS body FROM raw_batch
), parsed AS (
    -- one parse: NULL when the text is not JSON (json_valid then ::JSON parsed it twice)
    SELECT *, TRY_CAST(body AS JSON) AS msg FROM decoded
), fields AS (
    SELECT *,
        json_type(msg, [
            '$',                                        -- 1
            '$.data',                                   -- 2
            '$.data.fid',                               -- 3
            '$.data.timestamp',                         -- 4
            '$.data.castAddBody.text',                  -- 5
            '$.data.castAddBody.parentCastId',          -- 6
            '$.data.castAddBody.parentCastId.hash',     -- 7
            '$.data.castRemoveBody.targetHash',         -- 8
            '$.data.reactionBody.targetCastId.hash',    -- 9
            '$.data.reactionBody.targetCastId.fid',     -- 10
            '$.data.userDataBody.type',                 -- 11
            '$.data.userDataBody.value',                -- 12
            '$.data.castAddBody.mentions',              -- 13
            '$.data.castAddBody.embeds'                 -- 14
        ]) AS t,
        json_extract_string(msg, [
            '$.hash',                                   -- 1
            '$.data.type',                              -- 2
            '$.data.fid',                               -- 3
            '$.data.timestamp',                         -- 4
            '$.data.castAddBody.text',                  -- 5
            '$.data.castAddBody.parentCastId.fid',      -- 6
            '$.data.castAddBody.parentCastId.hash',     -- 7
            '$.data.reactionBody.type',                 -- 8
            '$.data.reactionBody.targetCastId.hash',    -- 9
            '$.data.reactionBody.targetCastId.fid',     -- 10
            '$.hydrated.followerCount',                 -- 11
            '$.data.linkBody.targetFid'                 -- 12
        ]) AS s
    FROM parsed
), typed AS (
    SELECT *, s[2] AS mtype, s[1] AS mhash FROM fields
)
SELECT
    topic,
    kafka_partition,
    kafka_offset,
    make_timestamptz(timestamp_ms * 1000)    AS kafka_timestamp,
    make_timestamptz(window_ms * 1000)       AS window_start,
    make_timestamptz(event_window_ms * 1000) AS event_window_start,
    is_late,
    message_key,
    message_value,
    mtype                                    AS message_type,
    mhash                                    AS message_hash,
    msg,                                     -- not stored: the clean stage reads it (clean.py)
    CASE
        WHEN body IS NULL THEN 'value is not UTF-8 text'
        WHEN msg IS NULL THEN 'value is not valid JSON'
        WHEN t[1] <> 'OBJECT' THEN 'value is not a JSON object'
        WHEN mhash IS NULL THEN 'missing hash'
        WHEN NOT regexp_full_match(mhash, '0x([0-9a-f]{40}|[0-9a-f]{64})')
            THEN 'hash is not lowercase 0x-hex of 20 or 32 bytes: ' || left(mhash, 80)
        WHEN t[2] IS DISTINCT FROM 'OBJECT' THEN 'missing data object'
        WHEN mtype IS NULL THEN 'missing data.type'
        WHEN mtype NOT IN (
            'MESSAGE_TYPE_CAST_ADD', 'MESSAGE_TYPE_CAST_REMOVE', 'MESSAGE_TYPE_REACTION_ADD',
            'MESSAGE_TYPE_REACTION_REMOVE', 'MESSAGE_TYPE_USER_DATA_ADD', 'MESSAGE_TYPE_LINK_ADD')
            THEN 'unknown message type: ' || left(mtype, 80)
        WHEN clock_reason IS NOT NULL THEN clock_reason
        WHEN coalesce(t[3], 'NULL') NOT IN ('UBIGINT', 'BIGINT')
            THEN 'data.fid is missing or not an integer'
        WHEN coalesce(TRY_CAST(s[3] AS BIGINT), 0) <= 0
            THEN 'data.fid is not a positive 64-bit integer: ' || left(s[3], 40)
        WHEN coalesce(t[4], 'NULL') NOT IN ('UBIGINT', 'BIGINT')
            THEN 'data.timestamp is missing or not an integer'
        WHEN NOT coalesce(TRY_CAST(s[4] AS BIGINT) BETWEEN 0 AND 4294967295, FALSE)
            THEN 'data.timestamp is not a 32-bit count of seconds: ' || left(s[4], 40)
        WHEN s[4]::BIGINT + 1609459200 > timestamp_ms // 1000 + $max_skew_s
            THEN 'data.timestamp is ' || (s[4]::BIGINT + 1609459200 - timestamp_ms // 1000)
                 || ' s ahead of the Kafka timestamp (more than ' || $max_skew_s || ' s)'
        WHEN mtype = 'MESSAGE_TYPE_CAST_ADD' AND t[5] IS DISTINCT FROM 'VARCHAR'
            THEN 'cast add without castAddBody.text'
        WHEN mtype = 'MESSAGE_TYPE_CAST_ADD' AND octet_length(encode(s[5])) > 1024
            THEN 'cast text is over the protocol''s 1024 bytes'
        WHEN mtype = 'MESSAGE_TYPE_CAST_ADD' AND t[6] = 'OBJECT'
             AND t[7] IS DISTINCT FROM 'VARCHAR'
            THEN 'cast add whose parentCastId has no hash'
        WHEN mtype = 'MESSAGE_TYPE_CAST_ADD' AND t[6] = 'OBJECT'
             AND NOT coalesce(TRY_CAST(s[6] AS BIGINT) > 0, FALSE)
            THEN 'cast add whose parentCastId.fid is not a positive 64-bit integer'
        WHEN mtype = 'MESSAGE_TYPE_CAST_ADD' AND t[6] = 'OBJECT'
             AND NOT regexp_full_match(s[7], '0x([0-9a-f]{40}|[0-9a-f]{64})')
            THEN 'cast add whose parent hash is not lowercase 0x-hex'
        WHEN mtype = 'MESSAGE_TYPE_CAST_ADD' AND coalesce(t[13], 'NULL') <> 'NULL'
             AND coalesce(len(list_filter(TRY_CAST(msg -> '$.data.castAddBody.mentions' AS BIGINT[]),
                                          m -> m IS NULL OR m <= 0)), 1) > 0
            THEN 'cast add whose mentions are not a list of fids'
        WHEN mtype = 'MESSAGE_TYPE_CAST_ADD' AND coalesce(t[14], 'NULL') NOT IN ('NULL', 'ARRAY')
            THEN 'cast add whose embeds are not a list'
        WHEN mtype = 'MESSAGE_TYPE_CAST_REMOVE' AND t[8] IS DISTINCT FROM 'VARCHAR'
            THEN 'cast remove without castRemoveBody.targetHash'
        WHEN mtype IN ('MESSAGE_TYPE_REACTION_ADD', 'MESSAGE_TYPE_REACTION_REMOVE')
             AND coalesce(s[8], '') NOT IN ('REACTION_TYPE_LIKE', 'REACTION_TYPE_RECAST')
            THEN 'reaction without a like or recast reactionBody.type'
        WHEN mtype IN ('MESSAGE_TYPE_REACTION_ADD', 'MESSAGE_TYPE_REACTION_REMOVE')
             AND t[9] IS DISTINCT FROM 'VARCHAR'
            THEN 'reaction without reactionBody.targetCastId.hash'
        WHEN mtype IN ('MESSAGE_TYPE_REACTION_ADD', 'MESSAGE_TYPE_REACTION_REMOVE')
             AND NOT regexp_full_match(s[9], '0x([0-9a-f]{40}|[0-9a-f]{64})')
            THEN 'reaction whose target hash is not lowercase 0x-hex'
        WHEN mtype IN ('MESSAGE_TYPE_REACTION_ADD', 'MESSAGE_TYPE_REACTION_REMOVE')
             AND coalesce(t[10], 'NULL') <> 'NULL'
             AND NOT coalesce(TRY_CAST(s[10] AS BIGINT) > 0, FALSE)
            THEN 'reaction whose target fid is not a positive 64-bit integer'
        WHEN mtype = 'MESSAGE_TYPE_USER_DATA_ADD' AND t[11] IS DISTINCT FROM 'VARCHAR'
            THEN 'user data without userDataBody.type'
        WHEN mtype = 'MESSAGE_TYPE_USER_DATA_ADD' AND coalesce(t[12], 'NULL') NOT IN ('VARCHAR', 'NULL')
            THEN 'user data whose value is not text'
        WHEN mtype = 'MESSAGE_TYPE_USER_DATA_ADD' AND coalesce(TRY_CAST(s[11] AS BIGINT), 0) < 0
            THEN 'user data with a negative follower count'
        WHEN mtype = 'MESSAGE_TYPE_LINK_ADD' AND NOT coalesce(TRY_CAST(s[12] AS BIGINT) > 0, FALSE)
            THEN 'link whose linkBody.targetFid is not a positive 64-bit integer'
    END                                      AS dead_letter_reason
FROM typed;

-- USER_DATA_ADD and LINK_ADD messages of the batch (view batch_messages), one row a hash, staged
-- for user_data and links; clean.py merges them (the earliest copy in the log wins).
CREATE OR REPLACE TEMP TABLE staged_user_data AS
WITH messages AS (
    -- one parse a message (see clean_casts.sql)
    SELECT *,
        json_extract_string(msg, [
            '$.hash',                                   -- 1
            '$.data.fid',                               -- 2
            '$.data.userDataBody.type',                 -- 3
            '$.data.userDataBody.value',                -- 4
            '$.hydrated.followerCount',                 -- 5
            '$.hydrated.followingCount',                -- 6
            '$.data.timestamp'                          -- 7
        ]) AS s
    FROM batch_messages
    WHERE message_type = 'MESSAGE_TYPE_USER_DATA_ADD'
)
SELECT
    s[1]                                                AS hash,
    s[2]::BIGINT                                        AS fid,
    CASE s[3]
        WHEN 'USER_DATA_TYPE_USERNAME' THEN 'username'
        WHEN 'USER_DATA_TYPE_DISPLAY' THEN 'display_name'
        WHEN 'USER_DATA_TYPE_BIO' THEN 'bio'
        WHEN 'USER_DATA_TYPE_PFP' THEN 'pfp_url'
        WHEN 'USER_DATA_TYPE_URL' THEN 'url'
        ELSE lower(replace(s[3], 'USER_DATA_TYPE_', ''))
    END                                                 AS field,
    s[4]                                                AS value,
    TRY_CAST(s[5] AS BIGINT)                            AS follower_count,
    TRY_CAST(s[6] AS BIGINT)                            AS following_count,
    farcaster_time(s[7])                                AS "timestamp",
    window_start,
    source_position
FROM messages
QUALIFY row_number() OVER (PARTITION BY hash ORDER BY source_position) = 1;

CREATE OR REPLACE TEMP TABLE staged_links AS
WITH messages AS (
    SELECT *,
        json_extract_string(msg, [
            '$.hash', '$.data.fid', '$.data.linkBody.type', '$.data.linkBody.targetFid',
            '$.data.timestamp'
        ]) AS s
    FROM batch_messages
    WHERE message_type = 'MESSAGE_TYPE_LINK_ADD'
)
SELECT
    s[1]                                                AS hash,
    s[2]::BIGINT                                        AS fid,
    coalesce(s[3], 'follow')                            AS link_type,
    s[4]::BIGINT                                        AS target_fid,
    farcaster_time(s[5])                                AS "timestamp",
    window_start,
    source_position
FROM messages
QUALIFY row_number() OVER (PARTITION BY hash ORDER BY source_position) = 1;

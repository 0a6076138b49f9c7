-- USER_DATA_ADD and LINK_ADD messages of the batch (view batch_messages), one row a hash, staged
-- for user_data and links; clean.py merges them (the earliest copy in the log wins).
CREATE OR REPLACE TEMP TABLE staged_user_data AS
WITH messages AS (
    SELECT * FROM batch_messages
    WHERE message_type = 'MESSAGE_TYPE_USER_DATA_ADD'
)
SELECT
    msg ->> '$.hash'                                        AS hash,
    (msg ->> '$.data.fid')::BIGINT                          AS fid,
    CASE msg ->> '$.data.userDataBody.type'
        WHEN 'USER_DATA_TYPE_USERNAME' THEN 'username'
        WHEN 'USER_DATA_TYPE_DISPLAY' THEN 'display_name'
        WHEN 'USER_DATA_TYPE_BIO' THEN 'bio'
        WHEN 'USER_DATA_TYPE_PFP' THEN 'pfp_url'
        WHEN 'USER_DATA_TYPE_URL' THEN 'url'
        ELSE lower(replace(msg ->> '$.data.userDataBody.type', 'USER_DATA_TYPE_', ''))
    END                                                     AS field,
    msg ->> '$.data.userDataBody.value'                     AS value,
    TRY_CAST(msg ->> '$.hydrated.followerCount' AS BIGINT)  AS follower_count,
    TRY_CAST(msg ->> '$.hydrated.followingCount' AS BIGINT) AS following_count,
    farcaster_time(msg ->> '$.data.timestamp')  AS "timestamp",
    window_start,
    source_position
FROM messages
QUALIFY row_number() OVER (PARTITION BY hash ORDER BY source_position) = 1;

CREATE OR REPLACE TEMP TABLE staged_links AS
WITH messages AS (
    SELECT * FROM batch_messages
    WHERE message_type = 'MESSAGE_TYPE_LINK_ADD'
)
SELECT
    msg ->> '$.hash'                                       AS hash,
    (msg ->> '$.data.fid')::BIGINT                         AS fid,
    coalesce(msg ->> '$.data.linkBody.type', 'follow')     AS link_type,
    (msg ->> '$.data.linkBody.targetFid')::BIGINT          AS target_fid,
    farcaster_time(msg ->> '$.data.timestamp') AS "timestamp",
    window_start,
    source_position
FROM messages
QUALIFY row_number() OVER (PARTITION BY hash ORDER BY source_position) = 1;

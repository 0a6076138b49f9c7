-- USER_DATA_ADD and LINK_ADD messages of one window ($window_start) → user_data, links.
INSERT INTO user_data BY NAME
WITH messages AS (
    SELECT * FROM decoded_messages
    WHERE window_start = $window_start AND message_type = 'MESSAGE_TYPE_USER_DATA_ADD'
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
QUALIFY row_number() OVER (PARTITION BY hash ORDER BY source_position) = 1
ON CONFLICT (hash) DO UPDATE SET
    fid = excluded.fid, field = excluded.field, value = excluded.value,
    follower_count = excluded.follower_count, following_count = excluded.following_count,
    "timestamp" = excluded."timestamp",
    window_start = excluded.window_start, source_position = excluded.source_position
WHERE excluded.source_position < user_data.source_position;

INSERT INTO links BY NAME
WITH messages AS (
    SELECT * FROM decoded_messages
    WHERE window_start = $window_start AND message_type = 'MESSAGE_TYPE_LINK_ADD'
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
QUALIFY row_number() OVER (PARTITION BY hash ORDER BY source_position) = 1
ON CONFLICT (hash) DO UPDATE SET
    fid = excluded.fid, link_type = excluded.link_type, target_fid = excluded.target_fid,
    "timestamp" = excluded."timestamp",
    window_start = excluded.window_start, source_position = excluded.source_position
WHERE excluded.source_position < links.source_position;

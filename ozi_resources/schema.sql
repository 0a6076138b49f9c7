-- Ozi's warehouse, a DuckLake. Physical tables hold what each stage wrote; the public
-- analytics contract (what people and the question answering write SQL against) is the views
-- at the end. DuckLake has no primary keys: the stages keep keys unique themselves (dedup by
-- message hash in the clean stage, delete-then-insert per window everywhere). The keys each
-- table would have are named in a comment beside it.

-- Which offsets of each Kafka partition belong to which window (see ozi_resources/windows.py).
CREATE TABLE IF NOT EXISTS kafka_offset_index (
    topic           VARCHAR     NOT NULL,
    kafka_partition INTEGER     NOT NULL,
    window_start    TIMESTAMPTZ NOT NULL,
    first_offset    BIGINT      NOT NULL,
    next_offset     BIGINT      NOT NULL  -- exclusive
);  -- key: (topic, kafka_partition, window_start)
-- How far each stage has consumed the log: for every Kafka partition, offsets below
-- next_offset are done (raw: read into raw_events; the others: folded in from the stage
-- before). Written in the same transaction as the stage's rows, so a crash re-does at most the
-- batch that did not commit, and never does one twice. See ozi_assets/stream.py.
CREATE TABLE IF NOT EXISTS stage_offsets (
    stage           VARCHAR NOT NULL,  -- raw | clean/casts | clean/reactions | clean/users | aggregates | embeddings
    topic           VARCHAR NOT NULL,
    kafka_partition INTEGER NOT NULL,
    next_offset     BIGINT  NOT NULL,
    running_max_ms  BIGINT             -- raw: running maximum of timestamps below next_offset
);  -- key: (stage, topic, kafka_partition)
-- Offsets that could not be read: deleted by retention before Ozi read them, or lost when the
-- log was reset (the embedded broker restarted). Counted, never silently skipped.
CREATE TABLE IF NOT EXISTS kafka_log_gaps (
    topic           VARCHAR     NOT NULL,
    kafka_partition INTEGER     NOT NULL,
    first_offset    BIGINT      NOT NULL,
    next_offset     BIGINT      NOT NULL,  -- exclusive; next_offset - first_offset messages lost
    reason          VARCHAR     NOT NULL,
    detected_at     TIMESTAMPTZ NOT NULL
);
DROP TABLE IF EXISTS kafka_index_state;

-- raw stage: every message of the log, bytes exactly as received.
CREATE TABLE IF NOT EXISTS raw_events (
    topic              VARCHAR     NOT NULL,
    kafka_partition    INTEGER     NOT NULL,
    kafka_offset       BIGINT      NOT NULL,
    kafka_timestamp    TIMESTAMPTZ NOT NULL,
    window_start       TIMESTAMPTZ NOT NULL,  -- the partition that read it
    event_window_start TIMESTAMPTZ NOT NULL,  -- the window of its own timestamp
    is_late            BOOLEAN,               -- its window had closed when it arrived (windows.py)
    message_key        BLOB,
    message_value      BLOB        NOT NULL,
    message_type       VARCHAR,
    message_hash       VARCHAR,
    dead_letter_reason VARCHAR               -- NULL: decoded; else why it was dead-lettered
);  -- key: (topic, kafka_partition, kafka_offset)
ALTER TABLE raw_events ADD COLUMN IF NOT EXISTS is_late BOOLEAN;  -- lakes of schema 3

-- clean stage. source_position orders copies of one message: the earliest copy in the log
-- owns the row, whichever window is materialized first.
CREATE TABLE IF NOT EXISTS cast_adds (
    hash               VARCHAR     NOT NULL,
    fid                BIGINT      NOT NULL,
    author_username    VARCHAR,
    author_display_name VARCHAR,
    text               VARCHAR     NOT NULL,
    "timestamp"        TIMESTAMPTZ NOT NULL,
    parent_hash        VARCHAR,
    parent_fid         BIGINT,
    parent_url         VARCHAR,
    thread_hash        VARCHAR,
    mentions           BIGINT[],
    embeds             VARCHAR[],
    snapshot_replies   BIGINT,
    snapshot_reactions BIGINT,
    snapshot_recasts   BIGINT,
    window_start       TIMESTAMPTZ NOT NULL,
    source_position    BIGINT      NOT NULL
);
CREATE TABLE IF NOT EXISTS cast_removes (
    hash            VARCHAR     NOT NULL,
    fid             BIGINT      NOT NULL,
    target_hash     VARCHAR     NOT NULL,
    "timestamp"     TIMESTAMPTZ NOT NULL,
    window_start    TIMESTAMPTZ NOT NULL,
    source_position BIGINT      NOT NULL
);
CREATE TABLE IF NOT EXISTS reaction_messages (
    hash            VARCHAR     NOT NULL,
    message_type    VARCHAR     NOT NULL,  -- MESSAGE_TYPE_REACTION_ADD | _REMOVE
    reaction_type   VARCHAR,               -- 'like' | 'recast'
    fid             BIGINT      NOT NULL,
    username        VARCHAR,
    target_hash     VARCHAR,
    target_fid      BIGINT,
    "timestamp"     TIMESTAMPTZ NOT NULL,
    window_start    TIMESTAMPTZ NOT NULL,
    source_position BIGINT      NOT NULL
);
CREATE TABLE IF NOT EXISTS user_data (
    hash            VARCHAR     NOT NULL,
    fid             BIGINT      NOT NULL,
    field           VARCHAR     NOT NULL,  -- username | display_name | bio | pfp_url | …
    value           VARCHAR,
    follower_count  BIGINT,                -- the source's snapshot, when it sent one
    following_count BIGINT,
    "timestamp"     TIMESTAMPTZ NOT NULL,
    window_start    TIMESTAMPTZ NOT NULL,
    source_position BIGINT      NOT NULL
);
CREATE TABLE IF NOT EXISTS links (
    hash            VARCHAR     NOT NULL,
    fid             BIGINT      NOT NULL,
    link_type       VARCHAR     NOT NULL,
    target_fid      BIGINT      NOT NULL,
    "timestamp"     TIMESTAMPTZ NOT NULL,
    window_start    TIMESTAMPTZ NOT NULL,
    source_position BIGINT      NOT NULL
);

-- aggregates stage: recomputed from the clean tables for every window or cast a run touches.
CREATE TABLE IF NOT EXISTS hourly_activity (
    window_start     TIMESTAMPTZ NOT NULL,
    window_end       TIMESTAMPTZ NOT NULL,
    casts            BIGINT NOT NULL,  -- replies included
    top_level_casts  BIGINT NOT NULL,
    replies          BIGINT NOT NULL,
    reactions        BIGINT NOT NULL,
    likes            BIGINT NOT NULL,
    recasts          BIGINT NOT NULL,
    distinct_authors BIGINT NOT NULL   -- fids that cast or replied
);
CREATE TABLE IF NOT EXISTS top_authors (
    window_start TIMESTAMPTZ NOT NULL,
    rank         INTEGER     NOT NULL,
    fid          BIGINT      NOT NULL,
    username     VARCHAR,
    casts        BIGINT      NOT NULL,
    replies      BIGINT      NOT NULL
);  -- key: (window_start, fid)
CREATE TABLE IF NOT EXISTS most_replied_to (
    window_start     TIMESTAMPTZ NOT NULL,
    rank             INTEGER     NOT NULL,
    fid              BIGINT      NOT NULL,
    username         VARCHAR,
    replies_received BIGINT      NOT NULL
);  -- key: (window_start, fid)
CREATE TABLE IF NOT EXISTS top_terms (
    window_start TIMESTAMPTZ NOT NULL,
    kind         VARCHAR     NOT NULL,  -- 'term' | 'mention' | 'hashtag'
    rank         INTEGER     NOT NULL,
    term         VARCHAR     NOT NULL,
    uses         BIGINT      NOT NULL,
    authors      BIGINT      NOT NULL
);  -- key: (window_start, kind, term)
CREATE TABLE IF NOT EXISTS cast_engagement (
    hash               VARCHAR     NOT NULL,
    fid                BIGINT,
    "timestamp"        TIMESTAMPTZ,         -- NULL: the cast itself is not in the stream
    replies_seen       BIGINT NOT NULL,
    recasts_seen       BIGINT NOT NULL,
    likes_seen         BIGINT NOT NULL,
    snapshot_replies   BIGINT,
    snapshot_reactions BIGINT,
    snapshot_recasts   BIGINT
);

-- The aggregates stage's own state, so a micro-batch costs its own messages rather than its
-- window: every cast's terms, tokenized once when the cast is folded in, and every reaction
-- key's latest message (the one that decides whether the reaction counts). Both are pure
-- functions of the clean tables, rebuilt for a window when the window is rebuilt.
CREATE TABLE IF NOT EXISTS cast_terms (
    hash        VARCHAR     NOT NULL,
    fid         BIGINT      NOT NULL,
    "timestamp" TIMESTAMPTZ NOT NULL,  -- the cast's: its window is its event time's
    kind        VARCHAR     NOT NULL,  -- 'term' | 'mention' | 'hashtag'
    term        VARCHAR     NOT NULL,
    uses        BIGINT      NOT NULL   -- occurrences in the cast's text
);  -- key: (hash, kind, term)
CREATE TABLE IF NOT EXISTS reaction_state (
    fid             BIGINT      NOT NULL,
    reaction_type   VARCHAR,
    target_hash     VARCHAR,
    target_fid      BIGINT,
    hash            VARCHAR     NOT NULL,  -- the latest message's
    message_type    VARCHAR     NOT NULL,  -- an add counts; a remove ends the reaction
    "timestamp"     TIMESTAMPTZ NOT NULL,
    source_position BIGINT      NOT NULL
);  -- key: (fid, reaction_type, target_hash)
-- A lake from before these tables has aggregates but no state: folding everything in again
-- builds the state and recomputes every aggregate from the clean tables (once).
DELETE FROM stage_offsets
WHERE stage = 'aggregates'
  AND NOT EXISTS (SELECT 1 FROM cast_terms) AND NOT EXISTS (SELECT 1 FROM reaction_state);

-- embeddings stage: one vector per cast and model, the system of record for every vector
-- index (the embedded Qdrant engine catches up from it; a Qdrant server is synced from it).
-- content_sha256 is the sha256 of the text the vector was computed from: a cast whose text
-- is unchanged is never embedded again.
CREATE TABLE IF NOT EXISTS cast_vectors (
    hash           VARCHAR     NOT NULL,
    model          VARCHAR     NOT NULL,
    vector         FLOAT[]     NOT NULL,  -- unit length; its size is the model's dimension
    content_sha256 VARCHAR     NOT NULL,
    fid            BIGINT      NOT NULL,
    username       VARCHAR,
    text           VARCHAR     NOT NULL,
    "timestamp"    TIMESTAMPTZ NOT NULL,
    parent_hash    VARCHAR,
    is_reply       BOOLEAN     NOT NULL,
    window_start   TIMESTAMPTZ NOT NULL
);  -- key: (model, hash)

-- Lakes of schema 5 and before: the clean stage reads the log through clean.DECODED_MESSAGES
-- now, from raw_events or from the batch just decoded.
DROP VIEW IF EXISTS decoded_messages;

-- The public contract.
CREATE OR REPLACE VIEW users AS
SELECT
    fid,
    arg_max(value, ("timestamp", source_position)) FILTER (WHERE field = 'username')     AS username,
    arg_max(value, ("timestamp", source_position)) FILTER (WHERE field = 'display_name') AS display_name,
    arg_max(value, ("timestamp", source_position)) FILTER (WHERE field = 'bio')          AS bio,
    arg_max(value, ("timestamp", source_position)) FILTER (WHERE field = 'pfp_url')      AS pfp_url,
    arg_max(follower_count, ("timestamp", source_position))  AS follower_count,
    arg_max(following_count, ("timestamp", source_position)) AS following_count,
    max("timestamp") AS updated_at
FROM user_data
GROUP BY fid;

CREATE OR REPLACE VIEW casts AS
SELECT
    c.hash,
    c.fid,
    coalesce(c.author_username, u.username) AS username,
    c.text,
    c."timestamp",
    c.parent_hash,
    c.parent_fid,
    c.thread_hash,
    c.parent_url,
    c.mentions,
    c.embeds,
    c.parent_hash IS NOT NULL AS is_reply,
    c.window_start
FROM cast_adds AS c
LEFT JOIN users AS u USING (fid)
WHERE c.hash NOT IN (SELECT target_hash FROM cast_removes);

-- A reaction counts while its latest message (by timestamp) for (fid, type, target) is an add.
CREATE OR REPLACE VIEW reactions AS
SELECT hash, reaction_type, fid, username, target_hash, target_fid, "timestamp", window_start
FROM (
    SELECT *, row_number() OVER (
        PARTITION BY fid, reaction_type, target_hash
        ORDER BY "timestamp" DESC, source_position DESC) AS latest
    FROM reaction_messages
)
WHERE latest = 1 AND message_type = 'MESSAGE_TYPE_REACTION_ADD';

CREATE OR REPLACE VIEW dead_letters AS
SELECT topic, kafka_partition, kafka_offset, kafka_timestamp, window_start,
       message_key, message_value, dead_letter_reason AS reason
FROM raw_events
WHERE dead_letter_reason IS NOT NULL;

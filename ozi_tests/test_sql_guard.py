"""The SQL guard refuses anything but one read-only SELECT over the public tables."""

import pytest

from ozi_resources.sql_guard import SqlRefused, guard
from ozi_resources.warehouse import PUBLIC_TABLES

REFUSED = [
    "DELETE FROM casts",
    "DROP TABLE casts",
    "UPDATE casts SET text = 'x'",
    "INSERT INTO casts SELECT * FROM casts",
    "CREATE TABLE x AS SELECT * FROM casts",
    "ALTER TABLE casts ADD COLUMN x INT",
    "TRUNCATE casts",
    "COPY casts TO 'out.csv'",
    "COPY (SELECT * FROM casts) TO 'out.parquet'",
    "ATTACH 'other.duckdb' AS o",
    "DETACH o",
    "INSTALL httpfs",
    "LOAD httpfs",
    "PRAGMA database_list",
    "SET threads = 1",
    "RESET threads",
    "EXPORT DATABASE 'dump'",
    "CALL duckdb_settings()",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM read_parquet('s3://bucket/x.parquet')",
    "SELECT * FROM read_json('http://example.com/x.json')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM 'https://example.com/data.csv'",
    "SELECT * FROM glob('/*')",
    "SELECT getenv('HOME')",
    "SELECT current_setting('threads')",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM raw_events",
    "SELECT * FROM kafka_index_state",
    "SELECT * FROM main.casts",
    "SELECT * FROM other.main.casts",
    "SELECT * FROM casts; DROP TABLE casts",
    "SELECT 1; SELECT 2",
    "SELECT * FROM casts WHERE hash IN (SELECT message_hash FROM raw_events)",
    "WITH x AS (SELECT * FROM raw_events) SELECT * FROM x",
    "SELECT * FROM sqlite_scan('x.db', 't')",
    "SELECT * FROM postgres_scan('host=x', 'public', 't')",
    "",
    "   ;  ",
    "this is not sql",
    # Writes hidden inside a query, and more ways out of the warehouse.
    "WITH d AS (DELETE FROM casts RETURNING *) SELECT * FROM d",
    "SELECT * INTO backup FROM casts",
    "INSERT OR REPLACE INTO users SELECT * FROM users",
    "MERGE INTO casts USING users ON casts.fid = users.fid WHEN MATCHED THEN DELETE",
    "CREATE VIEW leak AS SELECT * FROM casts",
    "CREATE MACRO m(x) AS x",
    "CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 's')",
    "DROP VIEW casts",
    "VACUUM",
    "CHECKPOINT",
    "USE other",
    "SELECT * FROM read_csv(['a.csv', 'b.csv'])",
    "SELECT * FROM parquet_metadata('x.parquet')",
    "SELECT * FROM casts WHERE text IN (SELECT content FROM read_text('/etc/shadow'))",
    "SELECT * FROM duckdb_extensions()",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM query('SELECT * FROM raw_events')",
    "SELECT * FROM query_table('raw_events')",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM pragma_database_list()",
    "SELECT * FROM iceberg_scan('s3://b/t')",
    "SELECT * FROM delta_scan('s3://b/t')",
    "SELECT * FROM mysql_scan('h', 'db', 't')",
    "SET GLOBAL memory_limit = '1GB'",
    "SELECT * FROM kafka_offset_index",
    "SELECT * FROM cast_adds",
    "DESCRIBE casts",
    "SHOW TABLES",
]


def test_refusal_corpus_is_large():
    assert len(REFUSED) >= 50


@pytest.mark.parametrize("statement", REFUSED)
def test_refused(statement):
    with pytest.raises(SqlRefused):
        guard(statement, PUBLIC_TABLES)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT count(*) FROM casts",
        "select username, count(*) from casts group by 1 order by 2 desc limit 5",
        "WITH r AS (SELECT * FROM reactions) SELECT count(*) FROM r",
        "SELECT * FROM casts c JOIN users u USING (fid) LIMIT 3",
        "SELECT * FROM hourly_activity UNION ALL SELECT * FROM hourly_activity",
    ],
)
def test_allowed_and_limited(statement):
    guarded = guard(statement, PUBLIC_TABLES)
    assert "LIMIT" in guarded.sql.upper()


def test_existing_limit_is_kept():
    assert guard("SELECT * FROM casts LIMIT 7", PUBLIC_TABLES).sql.endswith("LIMIT 7")

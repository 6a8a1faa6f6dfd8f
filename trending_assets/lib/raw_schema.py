"""DDL of the ``raw`` schema: what ingestion writes and what dbt's sources read.

Every raw row keeps its lineage (``source_file``, ``line_number``) and the partition it belongs to
(``partition_date``, the UTC date of ``scraped_at`` / ``occurred_at``). Rejected lines sit beside their table in
``raw.<table>_rejects`` with the raw text and the reason.
"""

from __future__ import annotations

import duckdb

LINEAGE_COLUMNS = """
    extras JSON,
    partition_date DATE NOT NULL,
    source_file VARCHAR NOT NULL,
    line_number BIGINT NOT NULL,
    loaded_at TIMESTAMP NOT NULL
"""

TABLES: dict[str, str] = {
    "movies": f"""
        movie_id VARCHAR NOT NULL,
        title VARCHAR NOT NULL,
        overview VARCHAR,
        genres VARCHAR[],
        genres_unknown VARCHAR[],
        genres_raw VARCHAR,
        release_date DATE,
        release_year INTEGER,
        scraped_at TIMESTAMP NOT NULL,
        source VARCHAR,
        popularity DOUBLE,
        vote_average DOUBLE,
        vote_count BIGINT,
        runtime_minutes INTEGER,
        language VARCHAR,
        {LINEAGE_COLUMNS}""",
    "reviews": f"""
        review_id VARCHAR NOT NULL,
        movie_id VARCHAR NOT NULL,
        text VARCHAR,
        rating DOUBLE,
        author VARCHAR,
        created_at TIMESTAMP,
        scraped_at TIMESTAMP NOT NULL,
        {LINEAGE_COLUMNS}""",
    "feedback_events": f"""
        event_id VARCHAR NOT NULL,
        event_id_derived BOOLEAN NOT NULL,
        user_id VARCHAR NOT NULL,
        movie_id VARCHAR,
        event_type VARCHAR NOT NULL,
        value DOUBLE,
        payload JSON,
        model_version VARCHAR,
        experiment_id VARCHAR,
        variant VARCHAR,
        occurred_at TIMESTAMP NOT NULL,
        {LINEAGE_COLUMNS}""",
}

REJECTS_COLUMNS = """
    partition_date DATE NOT NULL,
    source_file VARCHAR NOT NULL,
    line_number BIGINT NOT NULL,
    raw_text VARCHAR,
    reason VARCHAR NOT NULL,
    rejected_at TIMESTAMP NOT NULL
"""

LANDING_FILES = """
    entity VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    checksum VARCHAR NOT NULL,
    size_bytes BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    lines_read BIGINT NOT NULL,
    partitions DATE[] NOT NULL,
    first_seen_at TIMESTAMP NOT NULL,
    PRIMARY KEY (path, checksum)
"""


def ddl() -> list[str]:
    """Idempotent statements that create the raw schema and all its tables."""
    statements = ["CREATE SCHEMA IF NOT EXISTS raw"]
    for table, columns in TABLES.items():
        statements.append(f"CREATE TABLE IF NOT EXISTS raw.{table} ({columns})")
        statements.append(f"CREATE TABLE IF NOT EXISTS raw.{table}_rejects ({REJECTS_COLUMNS})")
    statements.append(f"CREATE TABLE IF NOT EXISTS raw.landing_files ({LANDING_FILES})")
    return statements


def schema_problems(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Differences between the live raw table and the declared DDL (a migration that did not happen)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _declared ({TABLES[table]})")
    expected = {name: dtype for name, dtype, *_ in con.execute("DESCRIBE _declared").fetchall()}
    actual = {name: dtype for name, dtype, *_ in con.execute(f"DESCRIBE raw.{table}").fetchall()}
    problems = [f"missing column {c}" for c in expected if c not in actual]
    problems += [f"unexpected column {c}" for c in actual if c not in expected]
    problems += [f"{c}: {actual[c]} instead of {t}" for c, t in expected.items() if c in actual and actual[c] != t]
    return problems

"""``ml.training_windows``: the record of every dataset a model may cite (training windows, backtest slices,
the static test set), keyed by content hash, so a model version's data version is one join away."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from trending_assets.lib.warehouse import table_exists
from trending_assets.lib.windows import split_static_test

DDL = (
    "CREATE SCHEMA IF NOT EXISTS ml",
    """CREATE TABLE IF NOT EXISTS ml.training_windows (
        window_id VARCHAR NOT NULL,          -- content hash of the rows; the data version
        kind VARCHAR NOT NULL,               -- training | backtest | static_test
        strategy VARCHAR,
        sampling VARCHAR,
        start_date DATE,
        end_date DATE,
        n_rows BIGINT NOT NULL,
        rows_per_genre JSON,
        source_partitions DATE[],
        path VARCHAR NOT NULL,
        config JSON,
        notes VARCHAR[],
        created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (window_id, kind)
    )""",
)

DIM_MOVIES_SQL = """
    SELECT movie_id, title, overview, genres, first_seen_date, last_scraped_at AS scraped_at, release_year, source, language,
           popularity, vote_average, vote_count, runtime_minutes
    FROM marts.dim_movies
"""


def ensure_ml_schema(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)


def labeled_movies(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The movies a window can draw from (latest version of each), as a polars frame."""
    return con.sql(DIM_MOVIES_SQL).pl()


def frozen_static_test_set(
    con: duckdb.DuckDBPyConnection, now: datetime, min_rows: int
) -> tuple[pl.DataFrame, datetime | None]:
    """The static test set's rows and when they were frozen; freezes them now on the first call that has
    at least ``min_rows`` labeled movies in the test bucket (before that: the candidates and None).

    The rows themselves are frozen, not just the ids: a later re-scrape of a test movie must not change what
    models are compared on. Waiting for ``min_rows`` keeps a first build on a nearly empty warehouse from
    freezing a uselessly small set forever.
    """
    ensure_ml_schema(con)
    if not table_exists(con, "ml", "static_test_set"):
        movies = labeled_movies(con).filter(pl.col("genres").list.len() > 0)
        test, _ = split_static_test(movies)
        if test.height < min_rows:
            return test.sort("movie_id"), None
        con.register("_static_test", test.sort("movie_id"))
        con.execute("CREATE TABLE ml.static_test_set AS SELECT *, CAST(? AS TIMESTAMP) AS frozen_at FROM _static_test", [now])
        con.unregister("_static_test")
    frozen = con.sql("SELECT * FROM ml.static_test_set ORDER BY movie_id").pl()
    return frozen.drop("frozen_at"), frozen["frozen_at"].min()


def source_partitions(rows: pl.DataFrame) -> list[date]:
    """The raw partitions the rows' versions came from (the UTC date of their scrape)."""
    if rows.is_empty():
        return []
    return rows.select(pl.col("scraped_at").dt.date().unique().sort()).to_series().to_list()


def record(
    con: duckdb.DuckDBPyConnection,
    *,
    window_id: str,
    kind: str,
    rows: pl.DataFrame,
    path: Path,
    rows_per_genre: dict[str, int],
    start: date | None,
    end: date | None,
    strategy: str | None = None,
    sampling: str | None = None,
    config: dict | None = None,
    notes: list[str] | None = None,
    now: datetime,
) -> bool:
    """Insert the dataset unless the same content was recorded before; True when it is new."""
    ensure_ml_schema(con)
    existing = con.execute(
        "SELECT count(*) FROM ml.training_windows WHERE window_id = ? AND kind = ?", [window_id, kind]
    ).fetchall()[0][0]
    if existing:
        return False
    con.execute(
        "INSERT INTO ml.training_windows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [window_id, kind, strategy, sampling, start, end, rows.height, json.dumps(rows_per_genre),
         source_partitions(rows), str(path), json.dumps(config or {}), notes or [], now],
    )
    return True

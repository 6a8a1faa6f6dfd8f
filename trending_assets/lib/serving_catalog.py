"""The catalog the serving API ranks: the newest movies from ``marts.dim_movies``, published as a parquet file.

The API never opens the warehouse, so the ``serving/catalog`` asset writes this file (atomically) and the API
re-reads it when it changes. Labels are left out on purpose: serving only ever sees what a model would.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import duckdb
import polars as pl

from trending_assets.lib.serving import CATALOG_COLUMNS


def build(con: duckdb.DuckDBPyConnection, days: int = 14, limit: int = 500) -> pl.DataFrame:
    """The ``limit`` most popular movies first seen in the newest ``days`` days of data."""
    return con.sql(
        f"""SELECT {', '.join(CATALOG_COLUMNS)}, first_seen_date
            FROM marts.dim_movies
            WHERE first_seen_date > (SELECT max(first_seen_date) FROM marts.dim_movies) - to_days(?)
            ORDER BY popularity DESC NULLS LAST, movie_id
            LIMIT ?""", params=[days, limit]).pl()


def publish(frame: pl.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` atomically (a hidden temp file in the same folder, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        frame.write_parquet(temp)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    return path

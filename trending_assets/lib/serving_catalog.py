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


def build_profiles(con: duckdb.DuckDBPyConnection, days: int = 28) -> pl.DataFrame:
    """Each user's genre profile (user_id, genre, weight; a user's weights sum to 1) from the genres they were shown
    on the movies they clicked in the newest ``days`` days of feedback. Each click is one unit of interest shared
    equally among its genres, as ``rankers.profile_from_clicks`` does."""
    clicks = con.sql(
        """WITH recent AS (
               SELECT * FROM marts.fct_feedback_events
               WHERE occurred_at > (SELECT max(occurred_at) FROM marts.fct_feedback_events) - to_days(?)),
           shown AS (
               SELECT user_id, movie_id, any_value(json_extract_string(payload, '$.genres')) AS genres
               FROM recent WHERE event_type = 'impression' AND payload IS NOT NULL GROUP BY ALL)
           SELECT c.user_id, s.genres
           FROM recent c JOIN shown s USING (user_id, movie_id)
           WHERE c.event_type = 'click'""", params=[days]).pl()
    schema = {"user_id": pl.String, "genre": pl.String, "weight": pl.Float64}
    if clicks.is_empty():
        return pl.DataFrame(schema=schema)
    shares = (clicks.with_columns(pl.col("genres").str.json_decode(pl.List(pl.String)))
              .filter(pl.col("genres").list.len() > 0)
              .with_columns((1 / pl.col("genres").list.len()).alias("weight"))
              .explode("genres").rename({"genres": "genre"})
              .group_by("user_id", "genre").agg(pl.col("weight").sum()))
    return (shares.with_columns(pl.col("weight") / pl.col("weight").sum().over("user_id"))
            .sort("user_id", "genre").select(schema.keys()).cast(schema))


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

"""Assembling ``monitoring.model_performance`` from the marts and the registry's models.

Which model served a piece of feedback is the event's ``model_version`` (the serving API stamps it). Feedback
without one (scraped-era traffic, the simulator) is handled per metric:

- a ``genre_correction`` is ground truth about a movie whatever was shown, so an unstamped one is scored against
  the champion, the model production serves by default: "how right is the champion on what users corrected";
- thumbs and clicks judge what was shown, which nobody recorded, so they are kept as ``unattributed`` rows: the
  audience's baseline, never credited to a version that may not have served them.

The label-free estimate (CBPE, ``performance.estimate_f1``) calibrates the champion on the static test set and
scores each recent day's new movies; its reference is the same estimate on the static test set itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import duckdb
import polars as pl

from trending_assets.lib import performance
from trending_assets.lib.features import label_matrix
from trending_assets.lib.genre_model import GenreModel, predict_labels
from trending_assets.lib.performance import Calibrator, F1Estimate, Score
from trending_assets.lib.warehouse import table_exists

UNATTRIBUTED = "unattributed"
FEEDBACK_TYPES = ("impression", "click", "thumbs_up", "thumbs_down")


def corrections(con: duckdb.DuckDBPyConnection, since: date) -> pl.DataFrame:
    """``marts.fct_genre_corrections`` rows from ``since`` on: model_version, movie_id, corrected_genres, event_date."""
    schema = {"model_version": pl.String, "movie_id": pl.String, "corrected_genres": pl.List(pl.String),
              "event_date": pl.Date}
    if not table_exists(con, "marts", "fct_genre_corrections"):
        return pl.DataFrame(schema=schema)
    return con.sql("""SELECT model_version, movie_id, corrected_genres, event_date
                      FROM marts.fct_genre_corrections WHERE event_date >= ?""", params=[since]).pl().cast(schema)


def feedback(con: duckdb.DuckDBPyConnection, since: date) -> pl.DataFrame:
    """Impressions, clicks and thumbs from ``marts.fct_feedback_events`` since ``since``, unstamped ones marked
    ``unattributed``."""
    schema = {"model_version": pl.String, "movie_id": pl.String, "event_type": pl.String, "event_date": pl.Date}
    if not table_exists(con, "marts", "fct_feedback_events"):
        return pl.DataFrame(schema=schema)
    types = ", ".join(f"'{t}'" for t in FEEDBACK_TYPES)
    return con.sql(f"""SELECT coalesce(model_version, '{UNATTRIBUTED}') AS model_version, movie_id, event_type,
                                  event_date
                           FROM marts.fct_feedback_events WHERE event_date >= ? AND event_type IN ({types})""",
                   params=[since]).pl().cast(schema)


def served_by(corrections_frame: pl.DataFrame, champion: str | None) -> pl.DataFrame:
    """Corrections with an unstamped ``model_version`` scored against ``champion`` (dropped when there is none)."""
    filled = corrections_frame.with_columns(pl.col("model_version").fill_null(pl.lit(champion, pl.String)))
    return filled.filter(pl.col("model_version").is_not_null())


def predicted_genres(model: GenreModel, movies: pl.DataFrame) -> list[list[str]]:
    """The model's genres for each movie, as lists."""
    if movies.is_empty():
        return []
    _, labels = predict_labels(model, movies)
    return [[g for g, on in zip(model.genres, row) if on] for row in labels]


def online_f1(corrections_frame: pl.DataFrame, movies: pl.DataFrame,
              models: Mapping[str, GenreModel]) -> pl.DataFrame:
    """``performance.correction_f1`` rows per (version, day) for every version in ``models`` that has corrections;
    ``movies`` holds the corrected movies' features (``marts.dim_movies`` rows)."""
    frames = [pl.DataFrame(schema=performance.PERFORMANCE_SCHEMA)]
    for version, model in models.items():
        asked = corrections_frame.filter(pl.col("model_version") == version)
        rows = movies.filter(pl.col("movie_id").is_in(asked["movie_id"].unique().to_list()))
        if rows.is_empty():
            continue
        predictions = pl.DataFrame({"model_version": version, "movie_id": rows["movie_id"],
                                    "predicted_genres": predicted_genres(model, rows)},
                                   schema={"model_version": pl.String, "movie_id": pl.String,
                                           "predicted_genres": pl.List(pl.String)})
        frames.append(performance.correction_f1(predictions, asked, model.genres))
    return pl.concat(frames)


def pooled(rows: pl.DataFrame, version: str, metric: str, since: date) -> Score | None:
    """One version's ``metric`` over the days from ``since`` on, weighted by n; None without rows."""
    chosen = rows.filter((pl.col("model_version") == version) & (pl.col("metric") == metric)
                         & (pl.col("day") >= since))
    n = int(chosen["n"].sum()) if chosen.height else 0
    if n == 0:
        return None
    return Score(float((chosen["value"] * chosen["n"]).sum() / n), n)


def calibrate(model: GenreModel, labeled: pl.DataFrame) -> Calibrator:
    """The model's per-genre isotonic calibration on labeled movies (the static test set)."""
    return Calibrator().fit(model.predict_proba(labeled), label_matrix(labeled, tuple(model.genres)))


def estimate(model: GenreModel, calibrator: Calibrator, movies: pl.DataFrame) -> F1Estimate:
    """CBPE's expected F1 of the model on ``movies`` (no labels needed)."""
    probs, decisions = predict_labels(model, movies)
    return performance.estimate_f1(calibrator.transform(probs), decisions, model.genres)


def estimated_rows(version: str, model: GenreModel, calibrator: Calibrator, movies: pl.DataFrame,
                   days: list[date]) -> pl.DataFrame:
    """``estimated_*`` rows for each day in ``days`` that has movies first seen on it."""
    frames = [pl.DataFrame(schema=performance.PERFORMANCE_SCHEMA)]
    for day in days:
        new = movies.filter(pl.col("first_seen_date") == day)
        if new.height:
            frames.append(performance.estimate_rows(version, day, estimate(model, calibrator, new)))
    return pl.concat(frames)


def recent_days(latest: date | None, days: int) -> list[date]:
    """The ``days`` days ending on ``latest``, oldest first (none when there is no data)."""
    if latest is None:
        return []
    return [latest - timedelta(days=offset) for offset in range(days - 1, -1, -1)]

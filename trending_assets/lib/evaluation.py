"""Scoring a model version on one dataset into the long rows of ``ml.evaluations``, the naive baseline a first
model is compared with, and the paired comparison of a challenger with its reference.

An evaluation is long: one row per (slice, slice_value, metric), with the columns in ``metrics.EVALUATION_COLUMNS``.
It holds the ``slice_report`` rows (slice "all" and the standard slices; metrics micro_f1, macro_f1, samples_f1 and
exact_match) and four rows per genre (slice "genre", slice_value the genre; metrics precision, recall, f1 and
support). Every row's ``n`` is the number of movies behind it, so there is no separate "n" metric row: it would
repeat that column. For a genre row ``n`` is every evaluated movie; the genre's own count is its "support" row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from trending_assets.lib.metrics import EVALUATION_COLUMNS, genre_scores, slice_report, standard_slices
from trending_assets.lib.stats import paired_bootstrap

BASELINE = "baseline:prevalence"
GENRE_SLICE = "genre"
GENRE_METRICS: tuple[str, ...] = ("precision", "recall", "f1", "support")
EVALUATION_SCHEMA = {
    "model_version": pl.String, "dataset": pl.String, "slice": pl.String, "slice_value": pl.String,
    "metric": pl.String, "value": pl.Float64, "n": pl.Int64,
}


@dataclass(frozen=True)
class Comparison:
    """The challenger's gain over the reference on one dataset, ``metric(challenger) - metric(reference)``.

    ``low`` and ``high`` bound the paired-bootstrap interval at ``confidence``; ``n`` is the number of movies both
    were scored on and ``window_id`` the content hash of those rows.
    """

    challenger: str
    reference: str
    dataset: str
    window_id: str
    metric: str
    diff: float
    low: float
    high: float
    p_value: float
    n_boot: int
    confidence: float
    n: int


def evaluate(
    model_version: str,
    dataset: str,
    frame: pl.DataFrame,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    genres: Sequence[str],
) -> pl.DataFrame:
    """The long evaluation rows of ``model_version``'s 0/1 predictions on ``dataset``.

    ``frame`` holds one row per movie, in label order, with the columns the standard slices need (release_year,
    source, overview); ``y_true`` and ``y_pred`` are (movies, genres) with one column per name in ``genres``.
    """
    report = slice_report(frame, y_true, y_pred, genres, standard_slices(frame))
    per_genre = (
        genre_scores(y_true, y_pred, genres)
        .unpivot(index="genre", on=list(GENRE_METRICS), variable_name="metric", value_name="value")
        .select(
            pl.lit(GENRE_SLICE).alias("slice"),
            pl.col("genre").alias("slice_value"),
            "metric",
            pl.col("value").cast(pl.Float64),
            pl.lit(frame.height, dtype=pl.Int64).alias("n"),
        )
    )
    return (
        pl.concat([report, per_genre])
        .with_columns(pl.lit(model_version).alias("model_version"), pl.lit(dataset).alias("dataset"))
        .select(EVALUATION_COLUMNS)
        .cast(EVALUATION_SCHEMA)
    )


def baseline_predictions(train_labels: np.ndarray, n_rows: int) -> np.ndarray:
    """The naive reference for a family with no champion yet: the same genres for every movie.

    It predicts each genre that at least half of the training movies have, and always the most frequent genre,
    because an empty prediction scores 0 on every F1 and would make any challenger look good. Returns a 0/1 int
    array of shape (n_rows, genres).
    """
    train_labels = np.asarray(train_labels)
    if train_labels.ndim != 2 or train_labels.shape[0] == 0:
        raise ValueError(
            f"train_labels must be a non-empty (movies, genres) 0/1 array; got shape {train_labels.shape}"
        )
    prevalence = train_labels.mean(axis=0)
    predicted = prevalence >= 0.5
    predicted[np.argmax(prevalence)] = True
    return np.tile(predicted.astype(int), (n_rows, 1))


def compare(
    challenger: str,
    reference: str,
    dataset: str,
    window_id: str,
    y_true: np.ndarray,
    pred_reference: np.ndarray,
    pred_challenger: np.ndarray,
    metrics: Sequence[str] = ("macro_f1", "micro_f1"),
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[Comparison]:
    """One paired-bootstrap ``Comparison`` per metric of the challenger against the reference on the same movies.

    A positive ``diff`` means the challenger scored higher. The same seed resamples the same rows for every
    metric, so the intervals of one call describe the same resamples.
    """
    comparisons = []
    for metric in metrics:
        result = paired_bootstrap(
            y_true, pred_reference, pred_challenger, metric=metric, n_boot=n_boot, confidence=confidence, seed=seed
        )
        comparisons.append(Comparison(
            challenger=challenger,
            reference=reference,
            dataset=dataset,
            window_id=window_id,
            metric=metric,
            diff=result.diff,
            low=result.low,
            high=result.high,
            p_value=result.p_value,
            n_boot=result.n_boot,
            confidence=result.confidence,
            n=int(np.asarray(y_true).shape[0]),
        ))
    return comparisons


def per_genre_f1(rows: pl.DataFrame, dataset: str) -> dict[str, float]:
    """Genre -> F1 from one model version's evaluation rows (``evaluate`` or ``read_evaluation``) on ``dataset``."""
    return {genre: float(value) for genre, value in _genre_metric(rows, dataset, "f1").items()}


def per_genre_support(rows: pl.DataFrame, dataset: str) -> dict[str, int]:
    """Genre -> support (movies truly of the genre) from one model version's evaluation rows on ``dataset``."""
    return {genre: int(value) for genre, value in _genre_metric(rows, dataset, "support").items()}


def _genre_metric(rows: pl.DataFrame, dataset: str, metric: str) -> dict[str, float]:
    picked = rows.filter(
        (pl.col("dataset") == dataset) & (pl.col("slice") == GENRE_SLICE) & (pl.col("metric") == metric)
    )
    # Rows of two versions (or windows) would silently overwrite each other's genres in the dict.
    if picked["slice_value"].is_duplicated().any():
        raise ValueError(
            f"the rows hold several {metric} values per genre on {dataset!r}; pass one model version's latest "
            "evaluation (read_evaluation gives that)"
        )
    return dict(zip(picked["slice_value"].to_list(), picked["value"].to_list()))

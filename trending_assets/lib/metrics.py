"""Multi-label evaluation of the genre model: per-genre scores, summary F1s, and the same numbers per slice.

Labels and predictions are 0/1 arrays of shape (movies, genres), one column per genre in ``genres`` order.

Zero division follows scikit-learn's ``zero_division=0``: a ratio whose denominator is 0 scores ``ZERO_DIVISION``
(0.0), so an undefined score never flatters a model. A genre's precision is undefined when it was never predicted,
its recall when it has no true positives (support 0), and its F1 only when it has neither. The macro average
therefore runs over genres with support > 0 only: a genre absent from the evaluated rows says nothing about the
model, and counting it as 0.0 would punish small slices. The per-movie F1 behind ``samples_f1`` of a movie with
no true and no predicted genre is likewise 0.0.

The functions on counts (``f1_from_counts``, ``micro_f1``, ``macro_f1``) accept any leading axes, so
``stats.paired_bootstrap`` scores a thousand resamples at once with the same definitions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

ZERO_DIVISION = 0.0
UNKNOWN = "unknown"
EVALUATION_COLUMNS: tuple[str, ...] = ("model_version", "dataset", "slice", "slice_value", "metric", "value", "n")
SLICE_SCHEMA = {"slice": pl.String, "slice_value": pl.String, "metric": pl.String, "value": pl.Float64, "n": pl.Int64}
STANDARD_SLICE_COLUMNS: tuple[str, ...] = ("release_year", "source", "overview")


def check_labels(
    y_true: np.ndarray, y_pred: np.ndarray, genres: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` and ``y_pred`` as boolean (movies, genres) arrays, after checking shapes and 0/1 values."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 2 or y_true.shape != y_pred.shape:
        raise ValueError(
            "y_true and y_pred must be 2-d arrays of the same (movies, genres) shape; "
            f"got {y_true.shape} and {y_pred.shape}"
        )
    if genres is not None and len(genres) != y_true.shape[1]:
        raise ValueError(f"{len(genres)} genre names for {y_true.shape[1]} label columns; pass one name per column")
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.isin(labels, (0, 1)).all():
            raise ValueError(f"{name} must hold only 0/1 (or booleans); threshold scores into labels first")
    return y_true.astype(bool), y_pred.astype(bool)


def genre_counts(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, false positives and false negatives per genre, each of shape (genres,)."""
    return _counts(*check_labels(y_true, y_pred), axis=0)


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 per element, ``2tp / (2tp + fp + fn)``; ``ZERO_DIVISION`` where there was nothing true or predicted."""
    tp = np.asarray(tp)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def micro_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 of the counts pooled over the last (genre) axis."""
    return f1_from_counts(np.sum(tp, axis=-1), np.sum(fp, axis=-1), np.sum(fn, axis=-1))


def macro_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Mean per-genre F1 over the genres with support > 0 (last axis); ``ZERO_DIVISION`` when none has any."""
    scored = (np.asarray(tp) + fn) > 0
    return _ratio(np.where(scored, f1_from_counts(tp, fp, fn), 0.0).sum(axis=-1), scored.sum(axis=-1))


def genre_scores(y_true: np.ndarray, y_pred: np.ndarray, genres: Sequence[str]) -> pl.DataFrame:
    """One row per genre: support (movies truly of the genre), precision, recall and F1.

    Read support first: a genre with support 0 scores 0.0 by the zero-division convention, not because the model
    failed on it.
    """
    tp, fp, fn = _counts(*check_labels(y_true, y_pred, genres), axis=0)
    return pl.DataFrame(
        {
            "genre": list(genres),
            "support": tp + fn,
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "f1": f1_from_counts(tp, fp, fn),
        },
        schema={
            "genre": pl.String, "support": pl.Int64, "precision": pl.Float64, "recall": pl.Float64, "f1": pl.Float64,
        },
    )


def summary(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | int]:
    """Micro, macro and samples F1, the exact-match ratio (every genre right) and the number of movies ``n``."""
    y_true, y_pred = check_labels(y_true, y_pred)
    n = y_true.shape[0]
    genre = _counts(y_true, y_pred, axis=0)
    per_movie_f1 = f1_from_counts(*_counts(y_true, y_pred, axis=1))
    return {
        "micro_f1": float(micro_f1(*genre)),
        "macro_f1": float(macro_f1(*genre)),
        "samples_f1": float(_ratio(per_movie_f1.sum(), n)),
        "exact_match": float(_ratio((y_true == y_pred).all(axis=1).sum(), n)),
        "n": n,
    }


def standard_slices(frame: pl.DataFrame) -> dict[str, pl.Expr]:
    """The slices every evaluation reports, as slice name -> expression over ``frame`` giving text labels.

    ``release_decade`` ("1990s", from ``release_year``), ``source`` (the scraper), and ``overview_length``
    (overview word count: "none" for a null or empty overview, "<20", "20-49", "50+"). A missing year or source
    is "unknown". Pass them to ``slice_report``, or materialise them with ``frame.select(**standard_slices(frame))``.
    """
    missing = [c for c in STANDARD_SLICE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"frame lacks column(s) {', '.join(missing)}; the standard slices need {', '.join(STANDARD_SLICE_COLUMNS)}"
        )
    words = pl.col("overview").str.count_matches(r"\S+").fill_null(0)
    return {
        "release_decade": ((pl.col("release_year") // 10 * 10).cast(pl.String) + "s").fill_null(UNKNOWN),
        "source": pl.col("source").cast(pl.String).fill_null(UNKNOWN),
        "overview_length": pl.when(words >= 50).then(pl.lit("50+"))
        .when(words >= 20).then(pl.lit("20-49"))
        .when(words >= 1).then(pl.lit("<20"))
        .otherwise(pl.lit("none")),
    }


def slice_report(
    frame: pl.DataFrame,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    genres: Sequence[str],
    slices: dict[str, pl.Expr | str],
) -> pl.DataFrame:
    """``summary`` metrics overall and per slice value, long: (slice, slice_value, metric, value, n).

    ``frame`` holds one row per movie, in the order of the label rows. Each slice is a column name or an
    expression over ``frame``; its values become text, with null as "unknown". The first rows cover every movie,
    as slice "all" with value "all", so one table answers both "how good" and "where worse".
    """
    y_true, y_pred = check_labels(y_true, y_pred, genres)
    if frame.height != y_true.shape[0]:
        raise ValueError(f"frame has {frame.height} rows but the labels have {y_true.shape[0]}; pass one row per movie")
    rows = _metric_rows("all", "all", summary(y_true, y_pred))
    for name, slice_expr in slices.items():
        expr = pl.col(slice_expr) if isinstance(slice_expr, str) else slice_expr
        values = frame.select(expr.cast(pl.String).fill_null(UNKNOWN).alias("value"))["value"]
        for value in values.unique().sort():
            member = (values == value).to_numpy()
            rows += _metric_rows(name, value, summary(y_true[member], y_pred[member]))
    return pl.DataFrame(rows, schema=SLICE_SCHEMA, orient="row")


def to_long(
    model_version: str, dataset: str, slice: str, slice_value: str, metrics: dict[str, float], n: int
) -> list[dict[str, str | float | int]]:
    """Rows for ``ml.evaluations``, one per metric, with the columns in ``EVALUATION_COLUMNS``.

    model_version: the registry version scored; dataset: what it was scored on (e.g. "static_test");
    slice and slice_value: the subset of movies ("all"/"all" for every one); metric and value: one score;
    n: movies in the subset. The key is (model_version, dataset, slice, slice_value, metric).
    """
    return [
        {"model_version": model_version, "dataset": dataset, **row}
        for row in _metric_rows(slice, slice_value, {**metrics, "n": n})
    ]


def _counts(y_true: np.ndarray, y_pred: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TP, FP and FN of boolean labels summed along ``axis``: 0 gives them per genre, 1 per movie."""
    return (y_true & y_pred).sum(axis=axis), (~y_true & y_pred).sum(axis=axis), (y_true & ~y_pred).sum(axis=axis)


def _metric_rows(slice: str, slice_value: str, scores: dict[str, float | int]) -> list[dict[str, str | float | int]]:
    """One row per score in ``scores``; its ``"n"`` entry goes into every row instead of a row of its own."""
    n = scores["n"]
    return [
        {"slice": slice, "slice_value": slice_value, "metric": metric, "value": float(value), "n": n}
        for metric, value in scores.items()
        if metric != "n"
    ]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator, denominator = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), ZERO_DIVISION)

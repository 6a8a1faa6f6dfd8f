"""How well a served model does after deployment: online metrics from user feedback, a label-free estimate for
days without corrections, and the alarm that compares them with a floor and a reference.

Online metrics come from the marts, per model version and day, as long rows (``PERFORMANCE_COLUMNS``) for
``monitoring.model_performance``:

- ``online_micro_f1``, ``online_macro_f1``, ``online_f1:<genre>``: the genres the model predicted for a movie
  against the genres a user gave in a ``genre_correction`` (user corrections are ground truth). The marts do not
  store which genres were shown, so the caller passes the version's predictions per movie.
- ``thumbs_down_rate``: thumbs-down among the thumbs votes (up + down) on the version's recommendations.
- ``click_through``: clicks per impression of movies the version tagged with genres.

The estimate is confidence-based performance estimation (CBPE, as NannyML's): calibrate each genre's
probabilities on a labeled set (the static test set), then on unlabeled data a predicted-positive genre is a true
positive with its calibrated probability p and a false positive with 1 - p, and a predicted-negative one a false
negative with p. F1 of those expected counts is the estimated F1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from trending_assets.lib.metrics import f1_from_counts, macro_f1, micro_f1

PERFORMANCE_COLUMNS: tuple[str, ...] = ("model_version", "day", "metric", "value", "n")
PERFORMANCE_SCHEMA = {
    "model_version": pl.String, "day": pl.Date, "metric": pl.String, "value": pl.Float64, "n": pl.Int64,
}
GENRE_F1_PREFIX = "online_f1:"
ESTIMATED_F1_PREFIX = "estimated_f1:"


def correction_f1(predictions: pl.DataFrame, corrections: pl.DataFrame, genres: Sequence[str]) -> pl.DataFrame:
    """Online F1 per (model_version, day) of the version's predicted genres against users' corrected genres.

    ``predictions``: (model_version, movie_id, predicted_genres list[str]) — what each version says each movie is.
    ``corrections``: rows of ``marts.fct_genre_corrections`` (model_version, movie_id, corrected_genres,
    event_date). Each correction is one scored example, so a movie corrected by two users counts twice. Only the
    model's ``genres`` are scored (it cannot predict others). Not scored: corrections without a model version, with
    no corrected genre (every name was unknown), or whose (model_version, movie_id) has no prediction (an unknown
    version). Rows: ``online_micro_f1`` and ``online_macro_f1`` with n = corrections scored, and
    ``online_f1:<genre>`` with n = corrections that name the genre (its support).
    """
    scored = (
        corrections.filter(pl.col("model_version").is_not_null() & (pl.col("corrected_genres").list.len() > 0))
        .join(predictions.select("model_version", "movie_id", "predicted_genres"),
              on=["model_version", "movie_id"], how="inner")
    )
    rows: list[dict] = []
    for (version, day), group in scored.group_by("model_version", "event_date", maintain_order=True):
        y_true = _multi_hot(group["corrected_genres"], genres)
        y_pred = _multi_hot(group["predicted_genres"], genres)
        tp, fp, fn = (y_true & y_pred).sum(0), (~y_true & y_pred).sum(0), (y_true & ~y_pred).sum(0)
        n = group.height
        rows += [_row(version, day, "online_micro_f1", micro_f1(tp, fp, fn), n),
                 _row(version, day, "online_macro_f1", macro_f1(tp, fp, fn), n)]
        rows += [_row(version, day, GENRE_F1_PREFIX + genre, f1, support)
                 for genre, f1, support in zip(genres, f1_from_counts(tp, fp, fn), tp + fn)]
    return _frame(rows)


def feedback_rates(events: pl.DataFrame) -> pl.DataFrame:
    """``thumbs_down_rate`` and ``click_through`` per (model_version, day) from ``marts.fct_feedback_events``.

    Only events about a movie and served by a model version count. thumbs_down_rate = thumbs_down / (thumbs_up +
    thumbs_down), n = thumbs votes; click_through = clicks / impressions, n = impressions. A rate whose
    denominator is 0 gets no row: no votes is no evidence, not a rate of 0.
    """
    counts = (
        events.filter(pl.col("model_version").is_not_null() & pl.col("movie_id").is_not_null())
        .group_by("model_version", "event_date")
        .agg(**{kind: (pl.col("event_type") == kind).sum()
                for kind in ("thumbs_up", "thumbs_down", "click", "impression")})
        .sort("model_version", "event_date")
    )
    rows: list[dict] = []
    for row in counts.iter_rows(named=True):
        version, day = row["model_version"], row["event_date"]
        votes = row["thumbs_up"] + row["thumbs_down"]
        if votes:
            rows.append(_row(version, day, "thumbs_down_rate", row["thumbs_down"] / votes, votes))
        if row["impression"]:
            rows.append(_row(version, day, "click_through", row["click"] / row["impression"], row["impression"]))
    return _frame(rows)


class Calibrator:
    """Per-genre isotonic calibration: maps a model's probability to the observed share of positives.

    Outside the probabilities seen in ``fit`` the map is clipped to its end values. A genre with only negatives
    (or only positives) in the labeled set maps everything to 0 (or 1): that is what the labeled set says.
    """

    def __init__(self) -> None:
        self._maps: list = []  # one sklearn IsotonicRegression per genre

    def fit(self, probs: np.ndarray, labels: np.ndarray) -> Calibrator:
        """Learn one monotone map per genre column from labeled (movies, genres) probabilities and 0/1 labels."""
        probs, labels = np.asarray(probs, dtype=float), np.asarray(labels)
        if probs.ndim != 2 or probs.shape != labels.shape:
            raise ValueError(f"probs and labels must be (movies, genres) arrays of one shape; got {probs.shape} "
                             f"and {labels.shape}")
        if probs.shape[0] < 2:
            raise ValueError(f"calibration needs at least 2 labeled movies; got {probs.shape[0]}")
        from sklearn.isotonic import IsotonicRegression  # here: scikit-learn takes a second to import

        self._maps = [
            IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(probs[:, j], labels[:, j])
            for j in range(probs.shape[1])
        ]
        return self

    def transform(self, probs: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of the same (movies, genres) shape."""
        probs = np.asarray(probs, dtype=float)
        if not self._maps:
            raise ValueError("the calibrator is not fitted; call fit(probs, labels) on a labeled set first")
        if probs.ndim != 2 or probs.shape[1] != len(self._maps):
            raise ValueError(f"expected (movies, {len(self._maps)}) probabilities; got {probs.shape}")
        if probs.shape[0] == 0:
            return probs.copy()
        return np.column_stack([m.predict(probs[:, j]) for j, m in enumerate(self._maps)])


@dataclass(frozen=True)
class F1Estimate:
    """Expected F1 on unlabeled movies: per genre (genre, expected_tp, expected_fp, expected_fn, expected_f1),
    micro and macro F1 over the expected counts, and ``n`` movies. Macro runs over genres with expected support
    > 0, as ``metrics.macro_f1`` does for realised counts."""

    per_genre: pl.DataFrame
    micro_f1: float
    macro_f1: float
    n: int


def estimate_f1(calibrated_probs: np.ndarray, decisions: np.ndarray, genres: Sequence[str]) -> F1Estimate:
    """CBPE: expected TP = sum of p over predicted positives, FP = sum of 1 - p over them, FN = sum of p over
    predicted negatives, per genre; F1 of those counts. ``decisions`` are the model's 0/1 genres."""
    p, d = np.asarray(calibrated_probs, dtype=float), np.asarray(decisions).astype(bool)
    if p.ndim != 2 or p.shape != d.shape or p.shape[1] != len(genres):
        raise ValueError(f"calibrated_probs {p.shape} and decisions {d.shape} must be (movies, {len(genres)})")
    tp, fp, fn = (p * d).sum(0), ((1 - p) * d).sum(0), (p * ~d).sum(0)
    per_genre = pl.DataFrame({
        "genre": list(genres), "expected_tp": tp, "expected_fp": fp, "expected_fn": fn,
        "expected_f1": f1_from_counts(tp, fp, fn),
    }, schema={"genre": pl.String, "expected_tp": pl.Float64, "expected_fp": pl.Float64,
               "expected_fn": pl.Float64, "expected_f1": pl.Float64})
    return F1Estimate(per_genre, float(micro_f1(tp, fp, fn)), float(macro_f1(tp, fp, fn)), p.shape[0])


def estimate_rows(model_version: str, day, estimate: F1Estimate) -> pl.DataFrame:
    """``estimated_micro_f1``, ``estimated_macro_f1`` and ``estimated_f1:<genre>`` rows; n = movies scored."""
    rows = [_row(model_version, day, "estimated_micro_f1", estimate.micro_f1, estimate.n),
            _row(model_version, day, "estimated_macro_f1", estimate.macro_f1, estimate.n)]
    rows += [_row(model_version, day, ESTIMATED_F1_PREFIX + g, f1, estimate.n)
             for g, f1 in estimate.per_genre.select("genre", "expected_f1").iter_rows()]
    return _frame(rows)


@dataclass(frozen=True)
class Score:
    """A metric's value and the number of examples behind it."""

    value: float
    n: int


@dataclass(frozen=True)
class PerformanceAlarm:
    """The performance check's verdict. ``insufficient_data`` when neither comparison had ``min_n`` examples;
    such a result always passes, since too little evidence must never raise a false alarm."""

    passed: bool
    insufficient_data: bool
    summary: str
    metadata: dict[str, float | int | str | None]


def performance_alarm(
    online_f1: Score | None,
    floor: float,
    estimated_f1_now: Score | None,
    estimated_f1_reference: Score | None,
    max_drop: float,
    min_n: int,
) -> PerformanceAlarm:
    """Fail when online F1 (on at least ``min_n`` corrections) is below ``floor``, or when estimated F1 now (on at
    least ``min_n`` movies, as is the reference) is more than ``max_drop`` below the reference estimate."""
    parts, failed = [], False
    online_ok = online_f1 is not None and online_f1.n >= min_n
    if online_ok:
        below = online_f1.value < floor
        failed |= below
        parts.append(f"online F1 {online_f1.value:.3f} on {online_f1.n} corrections is "
                     f"{'below' if below else 'at or above'} the floor {floor:.3f}")
    else:
        parts.append(f"online F1 has {online_f1.n if online_f1 else 0} corrections, fewer than {min_n}")
    drop = None
    estimate_ok = all(s is not None and s.n >= min_n for s in (estimated_f1_now, estimated_f1_reference))
    if estimate_ok:
        drop = estimated_f1_reference.value - estimated_f1_now.value
        dropped = drop > max_drop
        failed |= dropped
        parts.append(f"estimated F1 {estimated_f1_now.value:.3f} is {drop:+.3f} below the reference "
                     f"{estimated_f1_reference.value:.3f} ({'more' if dropped else 'no more'} than {max_drop:.3f})")
    else:
        parts.append(f"the estimate has fewer than {min_n} movies now or in the reference")
    insufficient = not (online_ok or estimate_ok)
    summary = ("insufficient data: " if insufficient else "") + "; ".join(parts)
    return PerformanceAlarm(
        passed=not failed,
        insufficient_data=insufficient,
        summary=summary,
        metadata={
            "online_f1": online_f1.value if online_f1 else None, "online_n": online_f1.n if online_f1 else 0,
            "floor": floor, "estimated_f1_now": estimated_f1_now.value if estimated_f1_now else None,
            "estimated_f1_reference": estimated_f1_reference.value if estimated_f1_reference else None,
            "estimated_drop": drop, "max_drop": max_drop, "min_n": min_n,
        },
    )


def _multi_hot(lists: pl.Series, genres: Sequence[str]) -> np.ndarray:
    index = {genre: j for j, genre in enumerate(genres)}
    out = np.zeros((len(lists), len(genres)), dtype=bool)
    for i, names in enumerate(lists.to_list()):
        for name in names or ():
            if name in index:
                out[i, index[name]] = True
    return out


def _row(model_version: str, day, metric: str, value, n) -> dict:
    return {"model_version": model_version, "day": day, "metric": metric, "value": float(value), "n": int(n)}


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=PERFORMANCE_SCHEMA)

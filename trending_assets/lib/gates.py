"""Offline promotion gates: the checks a candidate must pass before it may replace the champion.

Each gate is a plain function returning a ``GateResult`` whose summary is one sentence with the numbers that
decided it, so a promotion's record (asset check, log line, alias-move reason) says why without a second lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from trending_assets.lib.evaluation import Comparison
from trending_assets.lib.stats import BootstrapResult, non_inferior


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict: ``passed``, a one-sentence ``summary`` with the numbers, and those numbers as metadata."""

    name: str
    passed: bool
    summary: str
    metadata: dict[str, float | int | str]


def non_inferiority_gate(comparison: Comparison, tolerance: float) -> GateResult:
    """Pass when the comparison's lower bound is above ``-tolerance``: the challenger is at most ``tolerance`` worse.

    Against the naive baseline (``evaluation.BASELINE``) pass a tolerance of 0: a first model must be shown better
    than predicting the common genres for every movie, not merely not much worse.
    """
    result = BootstrapResult(
        diff=comparison.diff, low=comparison.low, high=comparison.high, p_value=comparison.p_value,
        n_boot=comparison.n_boot, metric=comparison.metric, confidence=comparison.confidence,
    )
    passed = non_inferior(result, tolerance)
    verdict = "above" if passed else "not above"
    summary = (
        f"{_metric_label(comparison.metric)} {_signed(comparison.diff)} "
        f"[{_signed(comparison.low)}, {_signed(comparison.high)}] vs {comparison.reference} on {comparison.n} "
        f"{comparison.dataset} movies; lower bound {verdict} {_signed(-tolerance)} tolerance"
    )
    return GateResult(
        name=f"non_inferior_{comparison.metric}",
        passed=passed,
        summary=summary,
        metadata={
            "challenger": comparison.challenger,
            "reference": comparison.reference,
            "dataset": comparison.dataset,
            "window_id": comparison.window_id,
            "metric": comparison.metric,
            "diff": comparison.diff,
            "ci_low": comparison.low,
            "ci_high": comparison.high,
            "p_value": comparison.p_value,
            "confidence": comparison.confidence,
            "n_boot": comparison.n_boot,
            "n": comparison.n,
            "tolerance": tolerance,
        },
    )


def genre_collapse_gate(
    candidate_f1: dict[str, float],
    reference_f1: dict[str, float],
    support: dict[str, int],
    min_support: int = 5,
    max_drop: float = 0.25,
) -> GateResult:
    """Fail when any genre with at least ``min_support`` movies has candidate F1 below reference F1 - ``max_drop``.

    A better average can hide a genre the candidate stopped predicting. Genres with less support, or missing
    from either model's scores, are too noisy or not comparable; they are not judged and are listed in metadata.
    """
    judged = sorted(
        genre for genre, count in support.items()
        if count >= min_support and genre in candidate_f1 and genre in reference_f1
    )
    not_judged = sorted((set(support) | set(candidate_f1) | set(reference_f1)) - set(judged))
    drops = {genre: reference_f1[genre] - candidate_f1[genre] for genre in judged}
    collapsed = [genre for genre in judged if drops[genre] > max_drop]
    worst = max(drops, key=drops.get, default="")
    if collapsed:
        listed = ", ".join(
            f"{genre} ({candidate_f1[genre]:.3f} vs {reference_f1[genre]:.3f})" for genre in collapsed
        )
        summary = f"F1 fell more than {max_drop:.2f} below the reference on {listed}"
    elif judged:
        summary = (
            f"no genre's F1 fell more than {max_drop:.2f} below the reference ({len(judged)} genres with support "
            f">= {min_support} judged; largest drop {drops[worst]:+.3f} on {worst})"
        )
    else:
        summary = f"no genre has support >= {min_support} in both models' scores, so none was judged"
    return GateResult(
        name="no_genre_collapse",
        passed=not collapsed,
        summary=summary,
        metadata={
            "collapsed": ", ".join(collapsed),
            "n_judged": len(judged),
            "not_judged": ", ".join(not_judged),
            "largest_drop": drops.get(worst, 0.0),
            "largest_drop_genre": worst,
            "min_support": min_support,
            "max_drop": max_drop,
        },
    )


def artifact_gate(check: Callable[[], np.ndarray], n_rows: int, n_genres: int) -> GateResult:
    """Pass when ``check()`` returns finite probabilities in [0, 1] of shape (n_rows, n_genres).

    ``check`` loads the artifact through the registry (which verifies its checksum) and predicts for ``n_rows``
    movies. Any exception it raises, a checksum mismatch included, becomes a failed result with the error in the
    summary: a gate reports, it does not crash the promotion run.
    """
    name = "artifact_loads_and_predicts"
    expected = (n_rows, n_genres)
    try:
        probabilities = np.asarray(check(), dtype=float)
    except Exception as error:  # every failure to load or predict is the finding
        message = f"{type(error).__name__}: {error}"
        return GateResult(name, False, f"artifact failed to load or predict: {message}", {"error": message})
    metadata: dict[str, float | int | str] = {"shape": str(probabilities.shape), "expected_shape": str(expected)}
    if probabilities.shape != expected:
        return GateResult(
            name, False, f"artifact predicted shape {probabilities.shape}, expected {expected} (movies, genres)",
            metadata,
        )
    if not np.isfinite(probabilities).all():
        bad = int((~np.isfinite(probabilities)).sum())
        return GateResult(
            name, False, f"artifact predicted {bad} NaN or infinite probabilities", {**metadata, "bad": bad}
        )
    outside = int(((probabilities < 0) | (probabilities > 1)).sum())
    if outside:
        return GateResult(
            name, False, f"artifact predicted {outside} values outside [0, 1]; expected probabilities",
            {**metadata, "bad": outside},
        )
    return GateResult(
        name, True, f"artifact loaded and predicted finite probabilities for {n_rows} movies x {n_genres} genres",
        metadata,
    )


def all_passed(results: Iterable[GateResult]) -> bool:
    """Whether every gate passed; False for no gates at all, since nothing was shown."""
    results = list(results)
    return bool(results) and all(result.passed for result in results)


def _metric_label(metric: str) -> str:
    """"macro_f1" -> "macro F1", for sentences."""
    return metric.replace("_f1", " F1").replace("_", " ")


def _signed(value: float) -> str:
    # Adding 0.0 turns -0.0 into 0.0, so a tolerance of 0 reads "+0.000", not "-0.000".
    return f"{value + 0.0:+.3f}"

"""Paired bootstrap for comparing two genre models on the same labeled movies.

The champion (``a``) and the challenger (``b``) are scored on identical rows, so both are resampled with the same
row indices: the noise shared by the two models (easy or hard movies in the sample) cancels in the difference,
which gives a much narrower interval than comparing two separate intervals.

Each resample is a weight per row (how many times it was drawn), so the per-genre TP/FP/FN counts of a block of
resamples are one matrix product of the weights with per-row indicators, instead of a thousand metric calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from trending_assets.lib.metrics import check_labels, macro_f1, micro_f1

METRICS = {"macro_f1": macro_f1, "micro_f1": micro_f1}
# Index cells per block of resamples: bounds memory (two ~16 MB arrays) whatever the number of rows.
BLOCK_CELLS = 2_000_000


@dataclass(frozen=True)
class BootstrapResult:
    """The challenger's gain over the champion, ``metric(b) - metric(a)``, with its percentile interval.

    ``diff`` is measured on the rows as given; ``low`` and ``high`` are the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` quantiles of the resampled differences. ``p_value`` is two-sided: twice the share of
    resamples on the other side of 0 from ``diff`` (0 included), capped at 1; a ``diff`` of exactly 0 (identical
    models, say) gives 1.0. The resolution is 2 / n_boot: 0.0 means no resample crossed 0, not that p is 0.
    """

    diff: float
    low: float
    high: float
    p_value: float
    n_boot: int
    metric: str
    confidence: float


def resample_indices(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices of ``n_boot`` resamples of ``n`` rows drawn with replacement, in blocks of (resamples, n).

    Blocks keep memory bounded for large evaluation sets; the seed fixes every resample.
    """
    rng = np.random.default_rng(seed)
    per_block = max(1, BLOCK_CELLS // max(n, 1))
    for start in range(0, n_boot, per_block):
        yield rng.integers(0, n, size=(min(per_block, n_boot - start), n))


def paired_bootstrap(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    metric: str = "macro_f1",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapResult:
    """Bootstrap ``metric(pred_b) - metric(pred_a)`` over the rows of ``y_true`` (0/1, movies x genres).

    ``metric`` is "macro_f1" or "micro_f1", as defined in ``metrics`` (macro over the genres with support in
    each resample).
    """
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} is not one of: {', '.join(METRICS)}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1; got {n_boot!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95); got {confidence!r}")
    y_true, pred_a = check_labels(y_true, pred_a)
    _, pred_b = check_labels(y_true, pred_b)
    n = y_true.shape[0]
    if n == 0:
        raise ValueError("no rows to compare the models on; the bootstrap needs at least one labeled movie")
    score = METRICS[metric]
    # Columns: model a's TP, FP and FN per genre, then model b's; one product with the weights counts them all.
    indicators = np.hstack(
        [np.hstack([y_true & pred, ~y_true & pred, y_true & ~pred]) for pred in (pred_a, pred_b)]
    ).astype(float)

    def diffs(counts: np.ndarray) -> np.ndarray:
        a, b = np.split(counts, 2, axis=-1)
        return score(*np.split(b, 3, axis=-1)) - score(*np.split(a, 3, axis=-1))

    observed = float(diffs(indicators.sum(axis=0)))
    boot = np.concatenate([diffs(_row_weights(block, n) @ indicators) for block in resample_indices(n, n_boot, seed)])
    low, high = np.quantile(boot, [(1 - confidence) / 2, (1 + confidence) / 2])
    return BootstrapResult(
        diff=observed,
        low=float(low),
        high=float(high),
        p_value=_two_sided_p(observed, boot),
        n_boot=n_boot,
        metric=metric,
        confidence=confidence,
    )


def non_inferior(result: BootstrapResult, tolerance: float) -> bool:
    """Whether the challenger is not worse than the champion by more than ``tolerance``, at the CI's confidence.

    The gate passes when the interval's lower end is above ``-tolerance``: even the pessimistic end of the
    plausible differences loses less than ``tolerance`` of the metric. It is one-sided at
    ``(1 + confidence) / 2``, so a 95% interval gives a 97.5% non-inferiority test. The burden of proof is on the
    challenger: too few rows give a wide interval that fails the gate, and a tolerance of 0 asks for a challenger
    shown to be better (an identical one fails).
    """
    if tolerance < 0:
        raise ValueError(f"tolerance is how much worse the challenger may be, so at least 0; got {tolerance!r}")
    return result.low > -tolerance


def _row_weights(indices: np.ndarray, n: int) -> np.ndarray:
    """How often each row was drawn in each resample: (resamples, n) counts from (resamples, n) indices."""
    offsets = np.arange(indices.shape[0])[:, None] * n
    return np.bincount((indices + offsets).ravel(), minlength=indices.size).reshape(indices.shape).astype(float)


def _two_sided_p(observed: float, boot: np.ndarray) -> float:
    if observed == 0:
        return 1.0
    other_side = np.mean(boot <= 0) if observed > 0 else np.mean(boot >= 0)
    return float(min(1.0, 2 * other_side))

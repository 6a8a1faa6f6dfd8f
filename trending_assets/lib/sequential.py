"""Always-valid inference for experiments that are looked at every day: the mixture SPRT.

A fixed-horizon p-value is valid once; checking it daily and stopping at the first p < alpha raises the false
positive rate several-fold. The mixture sequential probability ratio test (mSPRT; Johari, Pekelis & Walsh, "Always
valid inference", 2017, as used by Optimizely) instead compares, at every look, the likelihood of the cumulative
difference under "no effect" with its likelihood averaged over a N(0, tau2) prior on the effect. With the normal
approximation diff ~ N(effect, V) this mixture ratio is, in closed form,

    Lambda = sqrt(V / (V + tau2)) * exp(tau2 * diff**2 / (2 V (V + tau2)))

and under the null it is a martingale, so by Ville's inequality P(Lambda ever >= 1/alpha) <= alpha: the running
minimum of 1/Lambda is a p-value valid however often and whenever one looks. Inverting the test gives a confidence
sequence, an interval that covers the effect at every look simultaneously. The price is power: at a fixed horizon
the mSPRT needs more users than the z-test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


def msprt_p_values(diffs: np.ndarray, variances: np.ndarray, tau2: float) -> np.ndarray:
    """Always-valid p-values, one per look, along the last axis (e.g. simulations x looks).

    ``diffs`` are the cumulative estimates (treatment - control) at each look and ``variances`` their variances
    ``V``. A look whose variance is not positive and finite (no users yet, or no spread) carries no evidence and
    leaves the running p-value where it was.
    """
    if tau2 <= 0:
        raise ValueError(f"tau2 is the prior variance of the effect, so it must be positive; got {tau2!r}")
    diffs, variances = np.broadcast_arrays(np.asarray(diffs, dtype=float), np.asarray(variances, dtype=float))
    informative = np.isfinite(variances) & (variances > 0)
    v = np.where(informative, variances, 1.0)
    # In logs: exp() of the quadratic term overflows for strong effects, where the p-value is simply ~0.
    log_lambda = 0.5 * np.log(v / (v + tau2)) + tau2 * diffs**2 / (2 * v * (v + tau2))
    p = np.where(informative, np.minimum(1.0, np.exp(-log_lambda)), 1.0)
    return np.minimum.accumulate(p, axis=-1)


def msprt_confidence_interval(diff: float, variance: float, tau2: float, alpha: float) -> tuple[float, float]:
    """The mSPRT confidence sequence at one look: the effects that the test at level ``alpha`` does not reject.

    It excludes 0 exactly when that look's ``1 / Lambda`` is at most ``alpha``.
    """
    if tau2 <= 0 or not 0 < alpha < 1 or variance <= 0:
        raise ValueError(f"need tau2 > 0, variance > 0 and alpha in (0, 1); got {tau2!r}, {variance!r}, {alpha!r}")
    half = _half_width(np.asarray(variance, dtype=float), tau2, alpha)
    return float(diff - half), float(diff + half)


def default_tau2(mde: float) -> float:
    """The prior variance of the effect: ``mde**2``, so the prior's scale is the effect the experiment is sized for.

    The mSPRT is most powerful near effects of the prior's size; a much larger tau2 wastes power on effects nobody
    expects, a much smaller one needs many users before any effect shows.
    """
    if mde == 0:
        raise ValueError("mde is the planned absolute effect, so it cannot be 0")
    return float(mde) ** 2


@dataclass(frozen=True)
class SequentialResult:
    """The always-valid verdict after ``looks`` daily looks: running-minimum p-value and intersected interval.

    ``ci_low``/``ci_high`` intersect the confidence sequence over the looks (each is valid at every look, so their
    intersection is too); it excludes 0 exactly when ``p_value <= alpha``. ``diff`` is the latest cumulative
    estimate (treatment - control).
    """

    looks: int
    p_value: float
    ci_low: float
    ci_high: float
    alpha: float
    diff: float

    @property
    def significant(self) -> bool:
        """Whether the always-valid p-value is below ``alpha``: safe to stop at any look."""
        return self.p_value < self.alpha

    def as_dict(self) -> dict:
        """The fields plus ``significant``, as plain Python values."""
        return {**asdict(self), "significant": self.significant}


def sequential_two_proportion(
    daily_successes_control: Sequence[int], daily_n_control: Sequence[int], daily_successes_treatment: Sequence[int],
    daily_n_treatment: Sequence[int], mde: float, alpha: float = 0.05,
) -> SequentialResult:
    """mSPRT on the difference of conversion rates, one look per day, with the unpooled variance of the difference."""
    s_c, n_c, s_t, n_t = _cumulative(daily_successes_control, daily_n_control, daily_successes_treatment,
                                     daily_n_treatment, counts=(1, 3))
    if np.any((s_c < 0) | (s_c > n_c) | (s_t < 0) | (s_t > n_t)):
        raise ValueError("cumulative successes must lie between 0 and the cumulative users in each arm")
    rate_c, rate_t = _ratio(s_c, n_c), _ratio(s_t, n_t)
    variances = _ratio(rate_c * (1 - rate_c), n_c) + _ratio(rate_t * (1 - rate_t), n_t)
    return _result(rate_t - rate_c, variances, default_tau2(mde), alpha)


def sequential_means(
    daily_sum_c: Sequence[float], daily_sumsq_c: Sequence[float], daily_n_c: Sequence[int],
    daily_sum_t: Sequence[float], daily_sumsq_t: Sequence[float], daily_n_t: Sequence[int], mde: float,
    alpha: float = 0.05,
) -> SequentialResult:
    """mSPRT on the difference of means from daily sums, sums of squares and user counts (Welch variance)."""
    sum_c, sq_c, n_c, sum_t, sq_t, n_t = _cumulative(daily_sum_c, daily_sumsq_c, daily_n_c, daily_sum_t,
                                                     daily_sumsq_t, daily_n_t, counts=(2, 5))
    mean_c, mean_t = _ratio(sum_c, n_c), _ratio(sum_t, n_t)
    # Sample variance from the running sums; it needs 2 users in an arm, and rounding can push ~0 below 0.
    var_c = np.maximum(_ratio(sq_c - sum_c * mean_c, n_c - 1), 0.0)
    var_t = np.maximum(_ratio(sq_t - sum_t * mean_t, n_t - 1), 0.0)
    return _result(mean_t - mean_c, _ratio(var_c, n_c) + _ratio(var_t, n_t), default_tau2(mde), alpha)


def welch_look(control: np.ndarray, treatment: np.ndarray) -> tuple[float, float]:
    """One look's difference of means (treatment - control) and its Welch variance; (0, nan) below 2 per arm, a
    look that carries no evidence in ``msprt_p_values``."""
    if min(control.size, treatment.size) < 2:
        return 0.0, float("nan")
    return (float(treatment.mean() - control.mean()),
            float(control.var(ddof=1) / control.size + treatment.var(ddof=1) / treatment.size))


def from_looks(diffs: Sequence[float], variances: Sequence[float], mde: float, alpha: float = 0.05) -> SequentialResult:
    """mSPRT over looks the caller already estimated: the cumulative difference and its variance at each look
    (e.g. per-user metrics recomputed on all data up to each day)."""
    return _result(np.asarray(diffs, dtype=float), np.asarray(variances, dtype=float), default_tau2(mde), alpha)


def _result(diffs: np.ndarray, variances: np.ndarray, tau2: float, alpha: float) -> SequentialResult:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (e.g. 0.05); got {alpha!r}")
    p = msprt_p_values(diffs, variances, tau2)
    # Looks without evidence (no variance yet) leave the interval unbounded; nan-aware reductions skip them.
    informative = np.isfinite(variances) & (variances > 0)
    half = _half_width(np.where(informative, variances, np.nan), tau2, alpha)
    low = float(np.nanmax(diffs - half)) if informative.any() else -np.inf
    high = float(np.nanmin(diffs + half)) if informative.any() else np.inf
    return SequentialResult(looks=len(diffs), p_value=float(p[-1]), ci_low=low, ci_high=high, alpha=alpha,
                            diff=float(diffs[-1]))


def _half_width(variance: np.ndarray, tau2: float, alpha: float) -> np.ndarray:
    log_terms = 2 * np.log(1 / alpha) + np.log((variance + tau2) / variance)
    return np.sqrt(variance * (variance + tau2) / tau2 * log_terms)


def _cumulative(*daily: Sequence[float], counts: tuple[int, ...]) -> list[np.ndarray]:
    """Running totals of the daily inputs, after checking their shapes and that the user counts (``counts``) are >= 0."""
    arrays = [np.asarray(values, dtype=float) for values in daily]
    if any(a.ndim != 1 for a in arrays) or len({a.size for a in arrays}) != 1 or arrays[0].size == 0:
        raise ValueError(f"daily inputs must be flat and of one length (one value per day, at least one day); "
                         f"got lengths {[a.size for a in arrays]}")
    if any(np.any(arrays[i] < 0) for i in counts):
        raise ValueError("daily user counts must be non-negative")
    return [np.cumsum(a) for a in arrays]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` where ``den > 0``, NaN elsewhere (a look before an arm has users carries no evidence)."""
    return np.divide(num, den, out=np.full(np.shape(num), np.nan), where=den > 0)


def sign_test_p_value(wins_a: int, wins_b: int, prior: float = 1.0) -> float:
    """1/Lambda for an interleaving verdict at one look: the Beta(prior, prior)-mixture likelihood ratio of B's
    share among users with a preference against a share of 1/2 (the sign test's null). The same argument as the
    normal mSPRT above makes the running minimum over looks an always-valid p-value.

    Users' preferences are cumulative and may flip between looks, so the looks are not independent Bernoulli
    additions; under the null every preference is still equally likely either way, which is what the bound needs
    at each look, and the running minimum is conservative for the looks actually taken.
    """
    from scipy.special import betaln

    n = wins_a + wins_b
    log_ratio = betaln(wins_b + prior, wins_a + prior) - betaln(prior, prior) + n * np.log(2.0)
    return float(min(1.0, np.exp(-log_ratio)))

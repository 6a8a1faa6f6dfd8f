"""Fixed-horizon statistics of online experiments (A/B tests): comparisons, CUPED, SRM, sample size, corrections.

Every comparison reads "treatment minus control". Proportions get the pooled z-test for the p-value (the variance
under the null that both arms share one rate) and the unpooled Wald interval for the difference (the variance at the
observed rates); means get Welch's t-test, which does not assume equal variances. CUPED (Deng et al., 2013) removes
the part of a metric explained by a pre-experiment covariate before the Welch test: the estimate stays unbiased
because the covariate is measured before assignment, and the interval narrows by about ``1 - rho**2``.

These p-values are valid for one look at the end of a planned horizon; looking daily needs ``sequential``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_effectsize, proportions_ztest

ADJUST_METHODS = ("holm", "fdr_bh")
SAMPLE_SIZE_KINDS = ("proportion", "mean")


@dataclass(frozen=True)
class Comparison:
    """One metric's treatment-vs-control comparison: the difference, its ``1 - alpha`` interval and p-value.

    ``diff`` is absolute (treatment - control); ``relative_lift`` is ``diff / control_mean``, None when the control
    mean is 0. For CUPED the means are of the adjusted metric (same scale and expectation as the raw one), and
    ``variance_reduction`` says how much of the metric's variance the covariate removed.
    """

    metric: str
    method: str
    control_n: int
    treatment_n: int
    control_mean: float
    treatment_mean: float
    diff: float
    ci_low: float
    ci_high: float
    relative_lift: float | None
    p_value: float
    alpha: float
    variance_reduction: float | None = None

    @property
    def significant(self) -> bool:
        """Whether the two-sided p-value is below ``alpha``."""
        return self.p_value < self.alpha

    def as_dict(self) -> dict:
        """The fields plus ``significant``, as plain Python values (for metadata and JSON)."""
        return {**asdict(self), "significant": self.significant}


def two_proportion_test(
    metric: str, successes_control: int, n_control: int, successes_treatment: int, n_treatment: int,
    alpha: float = 0.05,
) -> Comparison:
    """Compare two conversion rates: pooled two-sided z-test p-value, unpooled Wald interval of the difference."""
    _check_alpha(alpha)
    for arm, successes, n in (("control", successes_control, n_control),
                              ("treatment", successes_treatment, n_treatment)):
        if n <= 0:
            raise ValueError(f"{arm} has n={n!r} users; each arm needs at least one user to compare rates")
        if not 0 <= successes <= n:
            raise ValueError(f"{arm} has {successes!r} successes out of {n!r} users; successes must be in [0, n]")
    rate_c, rate_t = successes_control / n_control, successes_treatment / n_treatment
    pooled = (successes_control + successes_treatment) / (n_control + n_treatment)
    # Every user converted, or none did: the rates are equal and z is 0/0, so there is no evidence of a difference.
    p_value = 1.0 if pooled in (0.0, 1.0) else float(
        proportions_ztest([successes_treatment, successes_control], [n_treatment, n_control])[1])
    low, high = confint_proportions_2indep(
        successes_treatment, n_treatment, successes_control, n_control, method="wald", compare="diff", alpha=alpha
    )
    return _comparison(metric, "two_proportion_z", n_control, n_treatment, rate_c, rate_t, low, high, p_value, alpha)


def welch_test(metric: str, control: Sequence[float], treatment: Sequence[float], alpha: float = 0.05) -> Comparison:
    """Compare two means with Welch's t-test and its Welch-Satterthwaite ``1 - alpha`` interval."""
    _check_alpha(alpha)
    control, treatment = _values("control", control), _values("treatment", treatment)
    return _welch(metric, "welch_t", control, treatment, alpha)


def cuped_theta(y: Sequence[float], x: Sequence[float]) -> float:
    """The CUPED coefficient ``cov(y, x) / var(x)``: pass both arms' users together so one theta serves both."""
    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    if y.shape != x.shape or y.ndim != 1 or y.size < 2:
        raise ValueError(f"y and x need one value per user, at least 2 users; got shapes {y.shape} and {x.shape}")
    var_x = np.var(x, ddof=1)
    if var_x == 0:
        raise ValueError("the covariate x is constant, so it cannot explain any variance; CUPED needs a varying x")
    return float(np.cov(y, x, ddof=1)[0, 1] / var_x)


def cuped_welch_test(
    metric: str, control_y: Sequence[float], control_x: Sequence[float], treatment_y: Sequence[float],
    treatment_x: Sequence[float], alpha: float = 0.05,
) -> Comparison:
    """Welch's test on the CUPED-adjusted metric ``y - theta * (x - mean(x))``, x a pre-experiment covariate.

    Theta and the mean of x are pooled over both arms: the same shift for every user, whichever arm, keeps the
    difference unbiased. ``variance_reduction`` is ``1 - var(adjusted) / var(raw)`` with within-arm (pooled)
    variances, so the treatment effect itself does not count as variance.
    """
    _check_alpha(alpha)
    control_y, treatment_y = _values("control_y", control_y), _values("treatment_y", treatment_y)
    control_x, treatment_x = _values("control_x", control_x), _values("treatment_x", treatment_x)
    if control_x.size != control_y.size or treatment_x.size != treatment_y.size:
        raise ValueError("each arm needs one covariate value x per metric value y; their lengths differ")
    all_x = np.concatenate([control_x, treatment_x])
    theta = cuped_theta(np.concatenate([control_y, treatment_y]), all_x)
    mean_x = all_x.mean()
    adjusted_c, adjusted_t = control_y - theta * (control_x - mean_x), treatment_y - theta * (treatment_x - mean_x)
    raw_var = _pooled_variance(control_y, treatment_y)
    reduction = 1 - _pooled_variance(adjusted_c, adjusted_t) / raw_var if raw_var > 0 else 0.0
    return _welch(metric, "cuped_welch_t", adjusted_c, adjusted_t, alpha, variance_reduction=float(reduction))


@dataclass(frozen=True)
class SrmResult:
    """Sample-ratio-mismatch check: a chi-square goodness-of-fit of the arms' user counts to the planned split."""

    observed: tuple[int, ...]
    expected_shares: tuple[float, ...]
    chi2: float
    p_value: float
    threshold: float

    @property
    def ok(self) -> bool:
        """True when the split is consistent with the plan (``p_value >= threshold``)."""
        return self.p_value >= self.threshold

    def as_dict(self) -> dict:
        """The fields plus ``ok``, as plain Python values."""
        return {**asdict(self), "ok": self.ok}


def srm_check(observed_counts: Sequence[int], expected_shares: Sequence[float], threshold: float = 0.001) -> SrmResult:
    """Test the observed users per arm against the planned shares (which must sum to 1).

    The default threshold is strict (0.001) because a mismatch means broken assignment or logging, and the check
    runs on every experiment, every day: a loose one would cry wolf.
    """
    counts = np.asarray(observed_counts, dtype=float)
    shares = np.asarray(expected_shares, dtype=float)
    if counts.ndim != 1 or counts.shape != shares.shape or counts.size < 2:
        raise ValueError(f"need one count and one share per arm, at least 2 arms; got {counts.size} and {shares.size}")
    if np.any(counts < 0) or counts.sum() == 0 or np.any(counts != np.round(counts)):
        raise ValueError(f"observed counts must be non-negative whole numbers of users, not all 0; got {counts}")
    if np.any(shares <= 0) or not math.isclose(shares.sum(), 1.0, abs_tol=1e-6):
        raise ValueError(f"expected shares must be positive and sum to 1 (e.g. [0.5, 0.5]); got {list(shares)}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be between 0 and 1 (e.g. 0.001); got {threshold!r}")
    chi2, p = stats.chisquare(counts, f_exp=shares * counts.sum())
    return SrmResult(tuple(int(c) for c in counts), tuple(float(s) for s in shares), float(chi2), float(p), threshold)


def required_sample_size(
    baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8, kind: str = "proportion",
    sd: float | None = None, ratio: float = 1.0,
) -> int:
    """Users in the control arm (the treatment gets ``ratio`` times as many) to detect an absolute ``mde``.

    "proportion": Cohen's arcsine effect size between ``baseline + mde`` and ``baseline``; "mean": ``mde / sd``
    (``sd`` is the metric's per-user standard deviation, required). Both use the two-sided normal power equation.
    """
    _check_alpha(alpha)
    if kind not in SAMPLE_SIZE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(SAMPLE_SIZE_KINDS)}; got {kind!r}")
    if not 0 < power < 1:
        raise ValueError(f"power must be between 0 and 1 (e.g. 0.8); got {power!r}")
    if mde == 0:
        raise ValueError("mde is the smallest absolute difference worth detecting, so it cannot be 0")
    if ratio <= 0:
        raise ValueError(f"ratio is treatment users per control user, so it must be positive; got {ratio!r}")
    if kind == "proportion":
        if not (0 < baseline < 1 and 0 < baseline + mde < 1):
            raise ValueError(f"baseline and baseline + mde must be rates in (0, 1); got {baseline!r} and {mde!r}")
        effect = proportion_effectsize(baseline + mde, baseline)
    else:
        if sd is None or sd <= 0:
            raise ValueError(f"kind='mean' needs sd, the metric's per-user standard deviation (> 0); got {sd!r}")
        effect = mde / sd
    # solve_power's test is two-sided by default, the same as the tests above.
    return math.ceil(NormalIndPower().solve_power(abs(effect), alpha=alpha, power=power, ratio=ratio))


def expected_duration_days(n_per_arm: int, daily_users: float, allocation_share: float = 1.0, arms: int = 2) -> int:
    """Days to enrol ``n_per_arm`` users in each of ``arms`` arms when ``allocation_share`` of daily users enter."""
    if n_per_arm <= 0 or daily_users <= 0 or arms < 1 or not 0 < allocation_share <= 1:
        raise ValueError(f"need n_per_arm > 0, daily_users > 0, arms >= 1 and allocation_share in (0, 1]; got "
                         f"{n_per_arm!r}, {daily_users!r}, {arms!r}, {allocation_share!r}")
    return math.ceil(n_per_arm * arms / (daily_users * allocation_share))


def adjust_pvalues(pvalues: Sequence[float], method: str = "holm") -> list[float]:
    """Correct p-values of several metrics or arms: "holm" (family-wise error) or "fdr_bh" (false discovery rate)."""
    if method not in ADJUST_METHODS:
        raise ValueError(f"method must be one of {', '.join(ADJUST_METHODS)}; got {method!r}")
    values = np.asarray(pvalues, dtype=float)
    if values.size == 0:
        return []
    if values.ndim != 1 or np.any(np.isnan(values)) or np.any((values < 0) | (values > 1)):
        raise ValueError(f"p-values must be a flat list of numbers in [0, 1]; got {list(values)}")
    return [float(p) for p in multipletests(values, method=method)[1]]


def _welch(
    metric: str, method: str, control: np.ndarray, treatment: np.ndarray, alpha: float,
    variance_reduction: float | None = None,
) -> Comparison:
    mean_c, mean_t = float(control.mean()), float(treatment.mean())
    if np.ptp(control) == 0 and np.ptp(treatment) == 0:
        # Both arms constant: the difference is known exactly (t would be x/0), so p is 1 for none and 0 for any.
        low = high = mean_t - mean_c
        p_value = 1.0 if mean_t == mean_c else 0.0
    else:
        result = stats.ttest_ind(treatment, control, equal_var=False)
        low, high = result.confidence_interval(1 - alpha)
        p_value = float(result.pvalue)
    return _comparison(metric, method, control.size, treatment.size, mean_c, mean_t, low, high, p_value, alpha,
                       variance_reduction)


def _comparison(
    metric: str, method: str, n_c: int, n_t: int, mean_c: float, mean_t: float, low: float, high: float,
    p_value: float, alpha: float, variance_reduction: float | None = None,
) -> Comparison:
    diff = float(mean_t - mean_c)
    return Comparison(metric, method, int(n_c), int(n_t), float(mean_c), float(mean_t), diff, float(low), float(high),
                      diff / mean_c if mean_c != 0 else None, p_value, alpha, variance_reduction)


def _pooled_variance(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))


def _values(name: str, values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size < 2 or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} needs at least 2 finite per-user values in a flat list; got {array.size} values")
    return array


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (e.g. 0.05); got {alpha!r}")

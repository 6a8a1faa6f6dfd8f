"""A/B test statistics against hand computations: z-test, Welch, CUPED, SRM, sample size, p-value corrections.

Expected values come from the textbook formulas written out here (stdlib ``NormalDist`` and scipy's t distribution,
not the tests the module calls), plus a simulated check that the planned sample size delivers the planned power.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from scipy.stats import t as t_dist

from trending_assets.lib.ab_stats import (
    Comparison,
    adjust_pvalues,
    cuped_theta,
    cuped_welch_test,
    expected_duration_days,
    required_sample_size,
    srm_check,
    two_proportion_test,
    welch_test,
)

Z = NormalDist()


def two_sided_normal_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


# --- two proportions -------------------------------------------------------------------------------------------------


def test_two_proportion_test_matches_the_pooled_z_and_the_wald_interval_by_hand():
    result = two_proportion_test("signup", 200, 2000, 250, 2000)
    p_c, p_t, pooled = 0.10, 0.125, 450 / 4000
    z = (p_t - p_c) / math.sqrt(pooled * (1 - pooled) * (1 / 2000 + 1 / 2000))
    half = Z.inv_cdf(0.975) * math.sqrt(p_c * (1 - p_c) / 2000 + p_t * (1 - p_t) / 2000)

    assert result.method == "two_proportion_z"
    assert (result.control_n, result.treatment_n) == (2000, 2000)
    assert result.control_mean == pytest.approx(p_c) and result.treatment_mean == pytest.approx(p_t)
    assert result.diff == pytest.approx(0.025)
    assert result.relative_lift == pytest.approx(0.25)
    assert z == pytest.approx(2.502, abs=1e-3)  # 0.025 / 0.00999, two-sided p ~ 0.0123
    assert result.p_value == pytest.approx(two_sided_normal_p(z), rel=1e-9)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.025 - half, 0.025 + half), rel=1e-9)
    assert result.significant  # p ~ 0.012


def test_two_proportion_test_is_antisymmetric_and_uses_alpha_for_the_interval():
    forward = two_proportion_test("m", 100, 1000, 120, 1100, alpha=0.10)
    backward = two_proportion_test("m", 120, 1100, 100, 1000, alpha=0.10)
    assert forward.p_value == pytest.approx(backward.p_value)
    assert forward.diff == pytest.approx(-backward.diff)
    assert (forward.ci_low, forward.ci_high) == pytest.approx((-backward.ci_high, -backward.ci_low))
    narrower = forward.ci_high - forward.ci_low
    wider = two_proportion_test("m", 100, 1000, 120, 1100, alpha=0.01)
    assert wider.ci_high - wider.ci_low == pytest.approx(narrower * Z.inv_cdf(0.995) / Z.inv_cdf(0.95))


def test_two_proportion_test_with_no_conversions_has_no_evidence_and_no_lift():
    result = two_proportion_test("m", 0, 500, 0, 500)
    assert result.p_value == 1.0 and not result.significant
    assert result.diff == 0 and result.relative_lift is None


@pytest.mark.parametrize(
    ("args", "message"),
    [((10, 0, 5, 100), "at least one user"), ((10, 100, 5, -1), "at least one user"),
     ((101, 100, 5, 100), r"in \[0, n\]"), ((10, 100, -1, 100), r"in \[0, n\]")],
)
def test_two_proportion_test_rejects_impossible_counts(args, message):
    with pytest.raises(ValueError, match=message):
        two_proportion_test("m", *args)


def test_comparison_as_dict_carries_the_verdict():
    data = two_proportion_test("signup", 200, 2000, 250, 2000).as_dict()
    assert data["metric"] == "signup" and data["significant"] is True
    assert data["variance_reduction"] is None
    assert set(data) == set(Comparison.__dataclass_fields__) | {"significant"}


# --- Welch -----------------------------------------------------------------------------------------------------------


def test_welch_test_matches_welch_satterthwaite_by_hand():
    control = [12.1, 9.8, 11.4, 10.2, 13.5, 8.9, 10.0, 11.7]
    treatment = [13.2, 15.1, 10.9, 14.8, 16.3, 12.0, 18.4, 11.1, 14.6, 13.9, 17.2]
    n_c, n_t = len(control), len(treatment)
    m_c, m_t = sum(control) / n_c, sum(treatment) / n_t
    v_c = sum((x - m_c) ** 2 for x in control) / (n_c - 1)
    v_t = sum((x - m_t) ** 2 for x in treatment) / (n_t - 1)
    se = math.sqrt(v_c / n_c + v_t / n_t)
    df = se**4 / ((v_c / n_c) ** 2 / (n_c - 1) + (v_t / n_t) ** 2 / (n_t - 1))
    t = (m_t - m_c) / se

    result = welch_test("minutes", control, treatment, alpha=0.05)
    assert result.method == "welch_t"
    assert result.diff == pytest.approx(m_t - m_c)
    assert result.p_value == pytest.approx(2 * t_dist.sf(abs(t), df), rel=1e-9)
    half = t_dist.ppf(0.975, df) * se
    assert (result.ci_low, result.ci_high) == pytest.approx((m_t - m_c - half, m_t - m_c + half), rel=1e-9)
    assert result.relative_lift == pytest.approx((m_t - m_c) / m_c)


def test_welch_test_with_constant_arms_knows_the_difference_exactly():
    same = welch_test("m", [1.0, 1.0, 1.0], [1.0, 1.0])
    assert same.p_value == 1.0 and same.diff == 0
    shifted = welch_test("m", [1.0, 1.0, 1.0], [2.0, 2.0])
    assert shifted.p_value == 0.0 and shifted.ci_low == shifted.ci_high == 1.0


@pytest.mark.parametrize(("control", "treatment"), [([1.0], [1.0, 2.0]), ([1.0, np.nan], [1.0, 2.0])])
def test_welch_test_needs_two_finite_values_per_arm(control, treatment):
    with pytest.raises(ValueError, match="at least 2 finite"):
        welch_test("m", control, treatment)


# --- CUPED -----------------------------------------------------------------------------------------------------------

RHO = 0.9


def cuped_world(n: int, effect: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Per-user metric y and pre-period covariate x with correlation RHO in each arm; treatment adds ``effect``."""
    x_c, x_t = rng.normal(10, 2, n), rng.normal(10, 2, n)

    def metric(x: np.ndarray) -> np.ndarray:
        return 5 + RHO * (x - 10) + math.sqrt(1 - RHO**2) * 2 * rng.normal(size=x.size)

    return metric(x_c), x_c, metric(x_t) + effect, x_t


def test_cuped_theta_is_the_regression_slope():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    assert cuped_theta(3 + 2 * x, x) == pytest.approx(2.0)
    rng = np.random.default_rng(0)
    y_c, x_c, y_t, x_t = cuped_world(20_000, 0.0, rng)
    assert cuped_theta(np.concatenate([y_c, y_t]), np.concatenate([x_c, x_t])) == pytest.approx(RHO, abs=0.02)


def test_cuped_removes_rho_squared_of_the_variance_and_narrows_the_interval():
    y_c, x_c, y_t, x_t = cuped_world(5_000, 0.1, np.random.default_rng(1))
    plain = welch_test("m", y_c, y_t)
    cuped = cuped_welch_test("m", y_c, x_c, y_t, x_t)
    assert cuped.method == "cuped_welch_t"
    assert cuped.variance_reduction == pytest.approx(RHO**2, abs=0.02)
    width_ratio = (cuped.ci_high - cuped.ci_low) / (plain.ci_high - plain.ci_low)
    assert width_ratio == pytest.approx(math.sqrt(1 - RHO**2), abs=0.03)
    assert cuped.ci_low < 0.1 < cuped.ci_high
    assert cuped.diff == pytest.approx(cuped.treatment_mean - cuped.control_mean)


def test_cuped_estimate_is_unbiased_and_less_noisy_over_replications():
    rng = np.random.default_rng(2)
    plain, adjusted = [], []
    for _ in range(300):
        y_c, x_c, y_t, x_t = cuped_world(400, 0.3, rng)
        plain.append(welch_test("m", y_c, y_t).diff)
        adjusted.append(cuped_welch_test("m", y_c, x_c, y_t, x_t).diff)
    adjusted_sd = np.std(adjusted, ddof=1)
    # Mean of 300 estimates: within 4 standard errors of the true effect.
    assert abs(np.mean(adjusted) - 0.3) < 4 * adjusted_sd / math.sqrt(300)
    assert adjusted_sd / np.std(plain, ddof=1) == pytest.approx(math.sqrt(1 - RHO**2), abs=0.08)


def test_cuped_with_an_unrelated_covariate_changes_little():
    rng = np.random.default_rng(3)
    y_c, y_t = rng.normal(0, 1, 3000), rng.normal(0, 1, 3000)
    cuped = cuped_welch_test("m", y_c, rng.normal(size=3000), y_t, rng.normal(size=3000))
    assert abs(cuped.variance_reduction) < 0.01


def test_cuped_rejects_a_constant_covariate_and_mismatched_lengths():
    with pytest.raises(ValueError, match="constant"):
        cuped_welch_test("m", [1.0, 2.0], [5.0, 5.0], [1.0, 3.0], [5.0, 5.0])
    with pytest.raises(ValueError, match="lengths differ"):
        cuped_welch_test("m", [1.0, 2.0, 3.0], [1.0, 2.0], [1.0, 3.0], [5.0, 6.0])


# --- SRM -------------------------------------------------------------------------------------------------------------


def test_srm_flags_a_45_55_split_of_10000_users():
    result = srm_check([4500, 5500], [0.5, 0.5])
    assert result.chi2 == pytest.approx(2 * 500**2 / 5000)  # = 100
    assert result.p_value < 0.001 and not result.ok


@pytest.mark.parametrize("counts", [[5000, 5000], [5030, 4970]])
def test_srm_passes_splits_within_chance(counts):
    result = srm_check(counts, [0.5, 0.5])
    assert result.ok
    assert result.as_dict()["ok"] is True and list(result.as_dict()["observed"]) == counts


def test_srm_with_three_arms_and_unequal_shares():
    assert srm_check([2000, 4000, 4000], [0.2, 0.4, 0.4]).p_value == pytest.approx(1.0)
    assert not srm_check([2300, 3850, 3850], [0.2, 0.4, 0.4]).ok


@pytest.mark.parametrize(
    ("counts", "shares", "message"),
    [([5000, 5000], [0.5, 0.6], "sum to 1"), ([5000, 5000], [0.5, 0.3, 0.2], "one share per arm"),
     ([-1, 5000], [0.5, 0.5], "non-negative"), ([0, 0], [0.5, 0.5], "not all 0")],
)
def test_srm_rejects_bad_inputs(counts, shares, message):
    with pytest.raises(ValueError, match=message):
        srm_check(counts, shares)


# --- planning --------------------------------------------------------------------------------------------------------


def arcsine_n(p1: float, p2: float, alpha: float, power: float, ratio: float = 1.0) -> float:
    """Per-arm n of the two-sample arcsine test: var(2 asin sqrt(p_hat)) = 1/n, so var(h_hat) = 1/n1 + 1/n2."""
    h = 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1))
    return (1 + 1 / ratio) * ((Z.inv_cdf(1 - alpha / 2) + Z.inv_cdf(power)) / h) ** 2


def test_required_sample_size_for_proportions_matches_the_arcsine_formula():
    n = required_sample_size(0.10, 0.02, alpha=0.05, power=0.8)
    assert abs(n - math.ceil(arcsine_n(0.10, 0.12, 0.05, 0.8))) <= 1  # 3835
    # The classic pooled-variance normal formula gives 3841 for the same plan; the two agree within 1%.
    z_a, z_b, p_bar = Z.inv_cdf(0.975), Z.inv_cdf(0.8), 0.11
    classic = (z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(0.1 * 0.9 + 0.12 * 0.88)) ** 2 / 0.02**2
    assert math.ceil(classic) == 3841 and n == pytest.approx(classic, rel=0.01)
    assert abs(required_sample_size(0.10, -0.02) - math.ceil(arcsine_n(0.10, 0.08, 0.05, 0.8))) <= 1
    assert abs(required_sample_size(0.10, 0.02, ratio=2) - math.ceil(arcsine_n(0.10, 0.12, 0.05, 0.8, 2))) <= 1


def test_required_sample_size_for_means_uses_the_standardised_effect():
    expected = 2 * ((Z.inv_cdf(0.975) + Z.inv_cdf(0.9)) / (0.5 / 4.0)) ** 2
    assert abs(required_sample_size(20.0, 0.5, power=0.9, kind="mean", sd=4.0) - math.ceil(expected)) <= 1
    with pytest.raises(ValueError, match="needs sd"):
        required_sample_size(20.0, 0.5, kind="mean")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"baseline": 0.1, "mde": 0.0}, "cannot be 0"), ({"baseline": 0.95, "mde": 0.1}, r"in \(0, 1\)"),
     ({"baseline": 0.1, "mde": 0.02, "kind": "ratio"}, "proportion, mean"),
     ({"baseline": 0.1, "mde": 0.02, "power": 1.2}, "power"), ({"baseline": 0.1, "mde": 0.02, "alpha": 0}, "alpha")],
)
def test_required_sample_size_rejects_bad_plans(kwargs, message):
    with pytest.raises(ValueError, match=message):
        required_sample_size(**kwargs)


def test_planned_sample_size_gives_the_planned_power_in_simulation():
    baseline, mde, sims = 0.10, 0.02, 1500
    n = required_sample_size(baseline, mde)
    rng = np.random.default_rng(7)
    control, treatment = rng.binomial(n, baseline, sims), rng.binomial(n, baseline + mde, sims)
    power = np.mean([two_proportion_test("m", c, n, t, n).significant for c, t in zip(control, treatment)])
    assert abs(power - 0.80) <= 0.05


def test_expected_duration_days_rounds_up():
    assert expected_duration_days(3841, 1000, allocation_share=0.5) == 16  # 7682 users at 500 a day
    assert expected_duration_days(1000, 1000) == 2
    assert expected_duration_days(1000, 3000, arms=3) == 1
    with pytest.raises(ValueError, match="allocation_share"):
        expected_duration_days(1000, 1000, allocation_share=0)


# --- multiple comparisons --------------------------------------------------------------------------------------------


def test_adjust_pvalues_holm_and_bh_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005*4, 0.01*3, 0.03*2, 0.04*1, then a running maximum: 0.02, 0.03, 0.06, 0.06.
    assert adjust_pvalues(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: sorted p*4/rank = 0.02, 0.02, 0.04, 0.04, then a running minimum from the top (already monotone).
    assert adjust_pvalues(p, "fdr_bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust_pvalues([0.2, 0.9], "fdr_bh") == pytest.approx([0.4, 0.9])
    assert adjust_pvalues([]) == []


def test_adjust_pvalues_rejects_unknown_methods_and_non_probabilities():
    with pytest.raises(ValueError, match="holm, fdr_bh"):
        adjust_pvalues([0.1], "bonferroni")
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        adjust_pvalues([0.1, 1.5])

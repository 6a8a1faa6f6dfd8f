"""mSPRT against its closed form, its confidence sequence's duality, and the point of it: daily peeking stays honest.

The A/A simulations draw daily binomial conversions for 2,000 experiments x 14 days at once; the fixed-horizon and
naive-peeking z-tests are the pooled z-test written out vectorised here (checked against ``two_proportion_test``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.stats import norm

from trending_assets.lib import sequential
from trending_assets.lib.ab_stats import two_proportion_test
from trending_assets.lib.sequential import (
    SequentialResult,
    default_tau2,
    msprt_confidence_interval,
    msprt_p_values,
    sequential_means,
    sequential_two_proportion,
)

ALPHA = 0.05


def mixture_ratio(diff: float, v: float, tau2: float) -> float:
    return math.sqrt(v / (v + tau2)) * math.exp(tau2 * diff**2 / (2 * v * (v + tau2)))


# --- the mixture likelihood ratio ------------------------------------------------------------------------------------


def test_msprt_p_value_is_one_over_the_mixture_ratio_with_a_running_minimum():
    tau2 = 4e-4
    diffs = np.array([0.0, 0.02, 0.05, 0.01])
    variances = np.array([4e-4, 1e-4, 1e-4, 5e-5])
    by_hand = [min(1.0, 1 / mixture_ratio(d, v, tau2)) for d, v in zip(diffs, variances)]
    assert by_hand[1] == pytest.approx(0.4515, abs=1e-4)  # sqrt(0.2) * e^1.6 = 2.215
    expected = np.minimum.accumulate(by_hand)
    p = msprt_p_values(diffs, variances, tau2)
    assert p == pytest.approx(expected, rel=1e-12)
    assert p[3] == p[2] < by_hand[3]  # evidence once seen is kept: the p-value never goes back up


def test_msprt_p_values_work_row_by_row_on_simulations_x_looks():
    rng = np.random.default_rng(0)
    diffs, variances = rng.normal(0, 0.01, (5, 7)), rng.uniform(1e-5, 1e-4, (5, 7))
    together = msprt_p_values(diffs, variances, 1e-4)
    assert together.shape == (5, 7)
    for row in range(5):
        assert together[row] == pytest.approx(msprt_p_values(diffs[row], variances[row], 1e-4))


def test_msprt_p_values_skip_looks_without_variance_and_survive_huge_effects():
    p = msprt_p_values([0.5, 0.5, 10.0], [0.0, np.nan, 1e-8], 1e-4)
    assert list(p[:2]) == [1.0, 1.0]
    assert p[2] == 0.0
    with pytest.raises(ValueError, match="tau2"):
        msprt_p_values([0.1], [0.01], 0.0)


def test_confidence_sequence_edge_is_where_the_p_value_reaches_alpha():
    v, tau2 = 2e-5, 4e-4
    low, high = msprt_confidence_interval(0.0, v, tau2, ALPHA)
    assert low == pytest.approx(-high)
    # An estimate exactly at the interval's edge is exactly at the level alpha of the test.
    assert msprt_p_values([high], [v], tau2)[0] == pytest.approx(ALPHA, rel=1e-9)
    assert msprt_p_values([high * 0.99], [v], tau2)[0] > ALPHA
    # Always-valid costs width: wider than the fixed-horizon 95% interval at the same variance.
    assert high > norm.ppf(0.975) * math.sqrt(v)


def test_default_tau2_is_the_squared_mde():
    assert default_tau2(0.02) == pytest.approx(4e-4)
    assert default_tau2(-0.5) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="cannot be 0"):
        default_tau2(0)


# --- daily data ------------------------------------------------------------------------------------------------------


def test_sequential_two_proportion_cumulates_days_with_the_unpooled_variance():
    s_c, n_c = [50, 48, 55], [500, 500, 500]
    s_t, n_t = [60, 70, 66], [500, 510, 490]
    result = sequential_two_proportion(s_c, n_c, s_t, n_t, mde=0.02)
    rate_c = np.cumsum(s_c) / np.cumsum(n_c)
    rate_t = np.cumsum(s_t) / np.cumsum(n_t)
    diffs = rate_t - rate_c
    variances = rate_c * (1 - rate_c) / np.cumsum(n_c) + rate_t * (1 - rate_t) / np.cumsum(n_t)
    assert result.looks == 3
    assert result.diff == pytest.approx(diffs[-1])
    assert result.p_value == pytest.approx(msprt_p_values(diffs, variances, 0.02**2)[-1])
    intervals = [msprt_confidence_interval(d, v, 0.02**2, ALPHA) for d, v in zip(diffs, variances)]
    assert result.ci_low == pytest.approx(max(lo for lo, _ in intervals))
    assert result.ci_high == pytest.approx(min(hi for _, hi in intervals))
    assert result.as_dict()["significant"] == result.significant == (result.p_value < ALPHA)


def test_sequential_two_proportion_finds_a_large_effect_and_excludes_zero():
    result = sequential_two_proportion([100] * 7, [1000] * 7, [150] * 7, [1000] * 7, mde=0.02)
    assert isinstance(result, SequentialResult)
    assert result.significant and result.ci_low > 0
    assert result.ci_low < 0.05 < result.ci_high


def test_sequential_two_proportion_waits_for_users():
    result = sequential_two_proportion([0, 10], [0, 100], [0, 12], [0, 100], mde=0.02)
    assert result.looks == 2 and 0 < result.p_value <= 1 and math.isfinite(result.ci_low)
    nothing = sequential_two_proportion([0], [0], [0], [0], mde=0.02)
    assert nothing.p_value == 1.0 and (nothing.ci_low, nothing.ci_high) == (-math.inf, math.inf)


def test_sequential_means_matches_the_per_look_welch_variance_of_the_raw_values():
    rng = np.random.default_rng(4)
    days_c = [rng.normal(10, 3, n) for n in (40, 55, 35)]
    days_t = [rng.normal(11, 4, n) for n in (45, 50, 30)]
    result = sequential_means([d.sum() for d in days_c], [(d**2).sum() for d in days_c], [d.size for d in days_c],
                              [d.sum() for d in days_t], [(d**2).sum() for d in days_t], [d.size for d in days_t],
                              mde=1.0)
    diffs, variances = [], []
    for look in range(1, 4):
        c, t = np.concatenate(days_c[:look]), np.concatenate(days_t[:look])
        diffs.append(t.mean() - c.mean())
        variances.append(c.var(ddof=1) / c.size + t.var(ddof=1) / t.size)
    assert result.diff == pytest.approx(diffs[-1])
    assert result.p_value == pytest.approx(msprt_p_values(np.array(diffs), np.array(variances), 1.0)[-1])


@pytest.mark.parametrize(
    ("args", "message"),
    [(([1, 2], [10], [1, 2], [10, 10]), "one length"), (([], [], [], []), "at least one day"),
     (([1], [-10], [1], [10]), "non-negative"), (([11], [10], [1], [10]), "between 0 and the cumulative")],
)
def test_sequential_two_proportion_rejects_bad_daily_data(args, message):
    with pytest.raises(ValueError, match=message):
        sequential_two_proportion(*args, mde=0.02)


def test_sequential_means_rejects_negative_counts():
    with pytest.raises(ValueError, match="non-negative"):
        sequential_means([1.0], [1.0], [-2], [1.0], [1.0], [2], mde=0.1)


# --- honesty under daily peeking -------------------------------------------------------------------------------------

SIMS, DAYS, DAILY_PER_ARM, BASELINE, MDE = 2000, 14, 500, 0.10, 0.02


def cumulative_counts(seed: int, rate_t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative conversions (control, treatment) and users per arm at each daily look: (SIMS, DAYS) arrays."""
    rng = np.random.default_rng(seed)
    control = rng.binomial(DAILY_PER_ARM, BASELINE, (SIMS, DAYS)).cumsum(axis=1)
    treatment = rng.binomial(DAILY_PER_ARM, rate_t, (SIMS, DAYS)).cumsum(axis=1)
    return control, treatment, DAILY_PER_ARM * np.arange(1, DAYS + 1)


def pooled_z_p(s_c: np.ndarray, s_t: np.ndarray, n: np.ndarray) -> np.ndarray:
    pooled = (s_c + s_t) / (2 * n)
    z = (s_t - s_c) / n / np.sqrt(pooled * (1 - pooled) * 2 / n)
    return 2 * norm.sf(np.abs(z))


@pytest.fixture(scope="module")
def aa():
    return cumulative_counts(seed=11, rate_t=BASELINE)


def test_vectorised_z_test_is_the_module_s_z_test(aa):
    s_c, s_t, n = aa
    for sim in range(5):
        assert pooled_z_p(s_c[sim, -1], s_t[sim, -1], n[-1]) == pytest.approx(
            two_proportion_test("m", s_c[sim, -1], n[-1], s_t[sim, -1], n[-1]).p_value)


def test_aa_fixed_horizon_z_test_holds_alpha(aa):
    s_c, s_t, n = aa
    false_positive_rate = np.mean(pooled_z_p(s_c[:, -1], s_t[:, -1], n[-1]) < ALPHA)
    assert abs(false_positive_rate - ALPHA) <= 0.015


def test_aa_naive_daily_peeking_inflates_false_positives(aa):
    s_c, s_t, n = aa
    stopped_early = np.any(pooled_z_p(s_c, s_t, n) < ALPHA, axis=1)
    assert np.mean(stopped_early) > 0.10


def test_aa_msprt_with_daily_peeking_holds_alpha(aa):
    s_c, s_t, n = aa
    rate_c, rate_t = s_c / n, s_t / n
    variances = (rate_c * (1 - rate_c) + rate_t * (1 - rate_t)) / n
    p = msprt_p_values(rate_t - rate_c, variances, default_tau2(MDE))
    assert np.mean(p[:, -1] < ALPHA) <= ALPHA + 0.015  # the running minimum: stopped at any day
    for sim in range(3):  # the daily-data entry point gives the same verdict as the vectorised one
        daily = np.diff(s_c[sim], prepend=0), np.diff(s_t[sim], prepend=0)
        per_arm = [DAILY_PER_ARM] * DAYS
        result = sequential_two_proportion(daily[0], per_arm, daily[1], per_arm, mde=MDE)
        assert result.p_value == pytest.approx(p[sim, -1])


def test_msprt_still_detects_a_real_effect_with_daily_peeking():
    s_c, s_t, n = cumulative_counts(seed=12, rate_t=BASELINE + MDE)
    rate_c, rate_t = s_c / n, s_t / n
    p = msprt_p_values(rate_t - rate_c, (rate_c * (1 - rate_c) + rate_t * (1 - rate_t)) / n, default_tau2(MDE))
    # 7,000 users per arm is ~1.8x the fixed-horizon plan (3,835): the always-valid test should find most effects.
    assert np.mean(p[:, -1] < ALPHA) > 0.6


def test_the_interleaving_sign_test_stays_valid_under_daily_peeking_and_finds_a_real_preference():
    rng = np.random.default_rng(4)
    naive = always_valid = 0
    runs = 400
    for _ in range(runs):  # A/A: every user with a preference is a coin flip; ten daily looks of 150 more users
        wins_b = np.cumsum(rng.binomial(150, 0.5, size=10))
        totals = 150 * np.arange(1, 11)
        p_fixed = [stats.binomtest(int(b), int(n), 0.5).pvalue for b, n in zip(wins_b, totals)]
        p_seq = [sequential.sign_test_p_value(int(n - b), int(b)) for b, n in zip(wins_b, totals)]
        naive += min(p_fixed) < 0.05
        always_valid += min(p_seq) < 0.05
    assert always_valid / runs <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / runs)
    assert naive / runs > 0.10  # stopping at the first fixed-horizon p < 0.05 is the inflation this prevents
    assert sequential.sign_test_p_value(800, 1200) < 1e-6  # 60% of 2000 users prefer B
    assert sequential.sign_test_p_value(40, 60) > 0.05  # the same share on 100 users is not enough

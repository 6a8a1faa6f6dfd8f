"""Off-policy estimates against the known value of a target policy in a simulated world.

Two kinds of users (drama fans and the rest) see one of three rails; click-through rates depend on both. The target
policy's true value is computed exactly from the rates, so bias and interval coverage can be measured.
"""

from __future__ import annotations

import numpy as np
import pytest

from trending_assets.lib.off_policy import (
    Estimate,
    doubly_robust,
    effective_sample_size,
    gate,
    ips,
    on_policy,
    reward_model,
    snips,
)

ARMS = ["drama", "comedy", "thriller"]
FAN_SHARE = 0.4
RATES = np.array([[0.04, 0.08, 0.10],   # not a drama fan
                  [0.20, 0.05, 0.08]])  # drama fan
TARGET = np.array([[0.1, 0.1, 0.8],     # the candidate: thriller for most, drama for drama fans
                   [0.8, 0.1, 0.1]])
UNIFORM = np.full((2, 3), 1 / 3)
SKEWED = np.array([[0.1, 0.8, 0.1],     # a live epsilon-greedy with floor that favours comedy
                   [0.1, 0.8, 0.1]])
TRUE_VALUE = float((1 - FAN_SHARE) * TARGET[0] @ RATES[0] + FAN_SHARE * TARGET[1] @ RATES[1])


def simulate(rng: np.random.Generator, n: int, logging: np.ndarray = UNIFORM):
    """One log of n rows: (actions, rewards, propensities, target probabilities, contexts)."""
    fan = (rng.random(n) < FAN_SHARE).astype(int)
    cumulative = logging[fan].cumsum(axis=1)
    actions = np.minimum((rng.random((n, 1)) > cumulative).sum(axis=1), 2)
    rewards = (rng.random(n) < RATES[fan, actions]).astype(float)
    return actions, rewards, logging[fan, actions], TARGET[fan], fan[:, None].astype(float)


def test_true_value_differs_from_every_single_arm_and_from_the_logging_policy():
    assert TRUE_VALUE == pytest.approx(0.6 * 0.092 + 0.4 * 0.173)
    skewed = (1 - FAN_SHARE) * SKEWED[0] @ RATES[0] + FAN_SHARE * SKEWED[1] @ RATES[1]
    assert abs(TRUE_VALUE - skewed) > 0.03  # so a naive mean of the logs would be far off


@pytest.mark.parametrize("logging", [UNIFORM, SKEWED], ids=["uniform", "skewed"])
def test_ips_snips_and_dr_are_unbiased_over_many_logs(logging):
    rng = np.random.default_rng(0)
    values = {"ips": [], "snips": [], "dr": [], "dr_wrong_model": [], "naive": []}
    for _ in range(300):
        a, r, p, pi, x = simulate(rng, 1000, logging)
        values["ips"].append(ips(a, r, p, pi, n_resamples=1).value)
        values["snips"].append(snips(a, r, p, pi, n_resamples=1).value)
        values["dr"].append(doubly_robust(a, r, p, pi, contexts=x, n_resamples=1).value)
        # Doubly robust: a badly wrong reward model is corrected by the propensities.
        wrong = np.full(pi.shape, 0.5)
        values["dr_wrong_model"].append(doubly_robust(a, r, p, pi, wrong, n_resamples=1).value)
        values["naive"].append(on_policy(r, n_resamples=1).value)
    for name in ("ips", "snips", "dr", "dr_wrong_model"):
        v = np.array(values[name])
        standard_error = v.std(ddof=1) / np.sqrt(v.size)
        assert abs(v.mean() - TRUE_VALUE) < 4 * standard_error, (name, v.mean(), TRUE_VALUE, standard_error)
    if logging is SKEWED:
        naive = np.array(values["naive"])
        assert abs(naive.mean() - TRUE_VALUE) > 10 * naive.std(ddof=1) / np.sqrt(naive.size)
    # A good reward model takes noise away: DR varies less than IPS from log to log.
    assert np.std(values["dr"]) < np.std(values["ips"])


def test_snips_and_dr_agree_with_the_truth_on_one_large_log():
    a, r, p, pi, x = simulate(np.random.default_rng(1), 50_000, SKEWED)
    for estimate in (snips(a, r, p, pi), doubly_robust(a, r, p, pi, contexts=x), ips(a, r, p, pi)):
        assert estimate.ci_low < TRUE_VALUE < estimate.ci_high, estimate
        assert estimate.value == pytest.approx(TRUE_VALUE, abs=0.006)
        assert estimate.n == 50_000


def test_bootstrap_intervals_cover_the_truth_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    covered = {"ips": 0, "snips": 0, "doubly_robust": 0}
    repetitions = 200
    for seed in range(repetitions):
        a, r, p, pi, x = simulate(rng, 1000, SKEWED)
        for estimate in (ips(a, r, p, pi, n_resamples=400, seed=seed), snips(a, r, p, pi, n_resamples=400, seed=seed),
                         doubly_robust(a, r, p, pi, contexts=x, n_resamples=400, seed=seed)):
            covered[estimate.estimator] += estimate.ci_low <= TRUE_VALUE <= estimate.ci_high
    for name, hits in covered.items():
        assert 0.88 <= hits / repetitions <= 0.99, (name, hits)


def test_the_bootstrap_is_reproducible_and_its_width_follows_the_level():
    a, r, p, pi, _ = simulate(np.random.default_rng(3), 2000)
    assert ips(a, r, p, pi, seed=5) == ips(a, r, p, pi, seed=5)
    assert ips(a, r, p, pi, seed=5) != ips(a, r, p, pi, seed=6)
    wide, narrow = ips(a, r, p, pi, level=0.99), ips(a, r, p, pi, level=0.80)
    assert wide.value == narrow.value
    assert wide.ci_low < narrow.ci_low < narrow.value < narrow.ci_high < wide.ci_high


USERS, REQUESTS_PER_USER = 50, 40
BASE = np.array([0.10, 0.30])  # mean reward per arm; a user's taste moves both by the same random effect


def clustered(rng: np.random.Generator):
    """A served log: 50 users making 40 requests each, arms drawn uniformly per request, every reward shifted by
    the user's own effect. Returns (actions, rewards, propensities, "always arm 1", user ids); the truth is
    BASE[1]."""
    users = np.repeat(np.arange(USERS), REQUESTS_PER_USER)
    effect = rng.normal(0, 0.1, USERS)[users]
    actions = rng.integers(0, 2, users.size)
    rewards = BASE[actions] + effect + rng.normal(0, 0.05, users.size)
    always_second = np.tile([0.0, 1.0], (users.size, 1))
    return actions, rewards, np.full(users.size, 0.5), always_second, [f"u{u}" for u in users]


def test_the_user_level_bootstrap_widens_the_interval_of_clustered_logs():
    a, r, p, pi, users = clustered(np.random.default_rng(10))
    rows, by_user = snips(a, r, p, pi), snips(a, r, p, pi, groups=users)
    assert by_user.value == rows.value and by_user.n == rows.n == 2000  # the point estimate does not change
    assert (by_user.groups, rows.groups) == (USERS, None)
    # 40 requests of one user are worth about one user: the honest interval is several times wider
    assert by_user.ci_high - by_user.ci_low > 3 * (rows.ci_high - rows.ci_low)
    assert by_user.ci_low < by_user.value < by_user.ci_high


def test_the_user_level_bootstrap_covers_the_truth_about_95_percent_where_rows_do_not():
    rng = np.random.default_rng(11)
    covered = {"rows": 0, "users": 0, "on_policy_users": 0}
    repetitions = 200
    for seed in range(repetitions):
        a, r, p, pi, users = clustered(rng)
        rows = snips(a, r, p, pi, n_resamples=300, seed=seed)
        by_user = snips(a, r, p, pi, n_resamples=300, seed=seed, groups=users)
        logged = on_policy(r, n_resamples=300, seed=seed, groups=users)
        covered["rows"] += rows.ci_low <= BASE[1] <= rows.ci_high
        covered["users"] += by_user.ci_low <= BASE[1] <= by_user.ci_high
        covered["on_policy_users"] += logged.ci_low <= BASE.mean() <= logged.ci_high
    assert 0.88 <= covered["users"] / repetitions <= 0.99, covered
    assert 0.88 <= covered["on_policy_users"] / repetitions <= 0.99, covered
    assert covered["rows"] / repetitions < 0.6, covered  # the row bootstrap is overconfident on served logs


def test_one_group_per_row_is_the_row_bootstrap_and_groups_must_match_the_rows():
    a, r, p, pi, x = simulate(np.random.default_rng(12), 800, SKEWED)
    for estimator in (ips, snips, doubly_robust):
        rows, singletons = estimator(a, r, p, pi, seed=3), estimator(a, r, p, pi, seed=3, groups=range(800))
        assert (singletons.ci_low, singletons.ci_high) == (rows.ci_low, rows.ci_high)
        assert singletons.groups == 800
    with pytest.raises(ValueError, match=r"groups need one key per logged row \(800\); got 799"):
        ips(a, r, p, pi, groups=range(799))


def test_effective_sample_size_counts_the_rows_a_deterministic_target_can_use():
    a, r, p, _, _ = simulate(np.random.default_rng(4), 3000)
    always_thriller = np.tile([0.0, 0.0, 1.0], (a.size, 1))
    estimate = ips(a, r, p, always_thriller, n_resamples=10)
    # Weights are 3 on thriller rows and 0 elsewhere: worth exactly the thriller rows.
    assert estimate.effective_sample_size == pytest.approx(np.sum(a == 2))
    assert effective_sample_size(np.ones(10)) == pytest.approx(10)
    assert effective_sample_size(np.array([1.0, 0, 0, 0])) == pytest.approx(1)


def test_actions_may_be_arm_names():
    a, r, p, pi, _ = simulate(np.random.default_rng(5), 500)
    names = [ARMS[i] for i in a]
    assert ips(names, r, p, pi, arms=ARMS) == ips(a, r, p, pi)


def test_reward_model_is_per_arm_means_or_a_ridge_regression_on_contexts():
    actions, rewards = np.array([0, 0, 1, 1, 1]), np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    assert reward_model(actions, rewards, 3).tolist() == [[0.5, 2 / 3, 0.6]] * 5  # arm 2 unseen: overall mean
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4000, 2))
    actions = rng.integers(0, 2, 4000)
    truth = np.where(actions == 0, 0.3 + x @ [0.1, -0.2], 0.5 + x @ [0.0, 0.3])
    predicted = reward_model(actions, truth + rng.normal(0, 0.01, 4000), 2, contexts=x, ridge=1.0)
    assert predicted[actions == 0, 0] == pytest.approx(truth[actions == 0], abs=0.01)
    assert predicted[:, 1] == pytest.approx(0.5 + x @ [0.0, 0.3], abs=0.01)


def estimate(value: float, low: float, high: float, ess: float = 5000.0) -> Estimate:
    return Estimate("doubly_robust", value, low, high, 10_000, ess)


def test_gate_passes_a_clearly_better_candidate_and_names_both_numbers():
    decision = gate(estimate(0.131, 0.121, 0.140), on_policy([0.0] * 900 + [1.0] * 100))
    assert decision.passed
    assert "0.1210" in decision.reason and "0.1000" in decision.reason
    assert (decision.candidate_ci_low, decision.current_value) == (0.121, pytest.approx(0.1))


def test_gate_refuses_a_worse_or_too_uncertain_candidate():
    worse = gate(estimate(0.090, 0.080, 0.100), 0.1)
    assert not worse.passed and "worse" in worse.reason and "0.0800" in worse.reason
    uncertain = gate(estimate(0.110, 0.095, 0.125), estimate(0.100, 0.098, 0.102))
    assert not uncertain.passed and "too wide" in uncertain.reason and "0.1000" in uncertain.reason
    assert not gate(estimate(0.2, 0.15, 0.25, ess=12), 0.1).passed  # a dozen effective rows prove nothing


def test_gate_decides_on_simulated_logs():
    a, r, p, pi, x = simulate(np.random.default_rng(7), 20_000, SKEWED)
    live = on_policy(r)
    assert live.value < TRUE_VALUE - 0.03
    assert gate(doubly_robust(a, r, p, pi, contexts=x), live).passed
    logging_as_target = SKEWED[x[:, 0].astype(int)]  # re-evaluating the live policy: no better than itself
    assert not gate(doubly_robust(a, r, p, logging_as_target, contexts=x), live).passed


def test_clear_errors_for_bad_propensities_and_mismatched_logs():
    a, r, p, pi, _ = simulate(np.random.default_rng(8), 100)
    with pytest.raises(ValueError, match=r"propensities must be in \(0, 1\]"):
        ips(a, r, np.where(np.arange(100) == 3, 0.0, p), pi)
    with pytest.raises(ValueError, match=r"propensities must be in \(0, 1\]"):
        snips(a, r, np.where(np.arange(100) == 3, 1.5, p), pi)
    with pytest.raises(ValueError, match="differ in length"):
        doubly_robust(a, r[:-1], p, pi)
    with pytest.raises(ValueError, match="sum to 1"):
        ips(a, r, p, pi * 0.9)
    with pytest.raises(ValueError, match="unknown arms"):
        ips(["jazz"] + [ARMS[i] for i in a[1:]], r, p, pi, arms=ARMS)
    with pytest.raises(ValueError, match="predicted_rewards"):
        doubly_robust(a, r, p, pi, np.zeros((100, 2)))
    with pytest.raises(ValueError, match="probability 0 to every logged action"):
        snips(np.zeros(100, dtype=int), r, np.full(100, 1 / 3), np.tile([0.0, 0.0, 1.0], (100, 1)))

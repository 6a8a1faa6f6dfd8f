"""Bandit policies: they find the best arm, and every decision carries the exact probability it was drawn with.

The distributions are checked against what the rules promise (floor, warm-up, argmax with ties), and the draws
against the distributions (chi-square). Sticky assignment and the allocation check are in test_bandit_allocation.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from trending_assets.lib.bandit_allocation import sticky_arm
from trending_assets.lib.bandits import UCB1, EpsilonGreedy, LinUCB, Policy, ThompsonSampling, argmax_probabilities

RATES = {"drama": 0.05, "comedy": 0.07, "thriller": 0.10}  # click-through rates; thriller is best
ARMS = list(RATES)


def make(kind: str, **kwargs) -> Policy:
    if kind == "thompson":
        return ThompsonSampling(ARMS, draws=500, **kwargs)
    if kind == "ucb1":
        return UCB1(ARMS, **kwargs)
    if kind == "epsilon":
        return EpsilonGreedy(ARMS, epsilon=0.1, **kwargs)
    return LinUCB(ARMS, dim=2, **kwargs)


def feed(policy: Policy, rounds: int, seed: int, context=None) -> list[str]:
    """Run the policy against the Bernoulli arms of RATES; the arms it chose, in order."""
    rng = np.random.default_rng(seed)
    chosen = []
    for _ in range(rounds):
        decision = policy.choose(rng, context)
        chosen.append(decision.arm)
        policy.update(decision.arm, float(rng.random() < RATES[decision.arm]), context)
    return chosen


@pytest.mark.parametrize("kind", ["thompson", "ucb1", "epsilon"])
def test_each_policy_ends_up_pulling_the_best_arm_most(kind):
    chosen = feed(make(kind), 6000, seed=0)
    last = Counter(chosen[-1500:])
    assert last.most_common(1)[0][0] == "thriller", last
    assert last["thriller"] > 0.5 * 1500  # not just a plurality: the policy has left uniform


def test_linucb_learns_that_the_best_arm_depends_on_the_user():
    # Context: a user's taste profile (likes drama, likes comedy). Drama fans click drama, comedy fans comedy.
    rates = {"drama": (0.30, 0.02), "comedy": (0.02, 0.30), "thriller": (0.10, 0.10)}
    users = np.array([[1.0, 0.0], [0.0, 1.0]])
    policy, rng = LinUCB(ARMS, dim=2, alpha=0.5), np.random.default_rng(1)
    for _ in range(3000):
        fan = int(rng.integers(2))
        arm = policy.choose(rng, users[fan]).arm
        policy.update(arm, float(rng.random() < rates[arm][fan]), users[fan])
    assert policy.probabilities(users[0]).tolist() == [1.0, 0.0, 0.0]
    assert policy.probabilities(users[1]).tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("kind", ["thompson", "ucb1", "epsilon", "linucb"])
def test_probabilities_sum_to_one_and_the_propensity_is_the_chosen_arms_probability(kind):
    policy, rng = make(kind), np.random.default_rng(2)
    context = [1.0, 0.5] if kind == "linucb" else None
    for step in range(300):
        decision = policy.choose(rng, context)
        probabilities = policy.probabilities(context)
        assert probabilities.sum() == pytest.approx(1.0, abs=1e-12)
        assert decision.propensity == probabilities[policy.index(decision.arm)] > 0
        assert decision.probabilities == dict(zip(ARMS, probabilities.tolist()))
        policy.update(decision.arm, float(step % 7 == 0 and decision.arm == "thriller"), context)


def test_choose_draws_each_arm_with_its_probability():
    policy = EpsilonGreedy(ARMS, epsilon=0.3)
    for arm, reward in (("drama", 0), ("comedy", 0), ("thriller", 1)):
        policy.update(arm, reward)
    p = policy.probabilities()
    assert p.tolist() == pytest.approx([0.1, 0.1, 0.8])
    rng = np.random.default_rng(3)
    counts = Counter(policy.choose(rng).arm for _ in range(20_000))
    assert chisquare([counts[a] for a in ARMS], 20_000 * p).pvalue > 0.001


@pytest.mark.parametrize("kind", ["thompson", "ucb1", "epsilon", "linucb"])
def test_the_exploration_floor_keeps_every_arm_at_floor_over_k(kind):
    policy = make(kind, floor=0.3)
    context = [1.0, 0.0] if kind == "linucb" else None
    feed(policy, 400, seed=4, context=context)
    p = policy.probabilities(context)
    assert p.min() >= 0.3 / 3 - 1e-12
    if kind in ("ucb1", "linucb"):  # deterministic: exactly floor / K on every arm but the best
        assert sorted(p.tolist()) == pytest.approx([0.1, 0.1, 0.8])


def test_warm_up_is_uniform_until_every_arm_has_enough_observations():
    policy = UCB1(ARMS, warmup=5)
    for _ in range(20):
        policy.update("thriller", 1.0)  # a great arm does not end the warm-up of the others
    for _ in range(5):
        policy.update("drama", 0.0)
    for _ in range(4):
        policy.update("comedy", 0.0)
    assert policy.warming_up and policy.probabilities().tolist() == [1 / 3] * 3
    policy.update("comedy", 0.0)
    assert not policy.warming_up
    assert policy.probabilities().tolist() == [0.0, 0.0, 1.0]


def test_ucb1_tries_every_arm_and_splits_ties_evenly():
    policy = UCB1(ARMS)
    assert policy.probabilities().tolist() == pytest.approx([1 / 3] * 3)
    policy.update("drama", 1.0)
    assert policy.probabilities().tolist() == pytest.approx([0.0, 0.5, 0.5])
    assert argmax_probabilities(np.array([0.2, 0.5, 0.5, 0.1])).tolist() == [0.0, 0.5, 0.5, 0.0]


def test_choose_sticky_logs_the_propensity_of_the_sticky_arm():
    policy = EpsilonGreedy(ARMS, epsilon=0.3)
    policy.update("thriller", 1.0)
    decision = policy.choose_sticky("home-rail", "user-7", "2024-06-03")
    assert decision.arm == sticky_arm("home-rail", "user-7", decision.probabilities, "2024-06-03")
    assert decision.propensity == decision.probabilities[decision.arm]


@pytest.mark.parametrize("kind", ["thompson", "ucb1", "epsilon", "linucb"])
def test_state_round_trips_through_json(kind):
    policy = make(kind, floor=0.1, warmup=2)
    context = [0.3, 0.7] if kind == "linucb" else None
    feed(policy, 200, seed=5, context=context)
    restored = Policy.from_state(json.loads(json.dumps(policy.state())))
    assert type(restored) is type(policy)
    assert restored.state() == policy.state()
    assert restored.probabilities(context).tolist() == policy.probabilities(context).tolist()


def test_reset_forgets_what_was_learned_but_keeps_the_configuration():
    policy = LinUCB(ARMS, dim=2, alpha=0.5, floor=0.1, warmup=3)
    feed(policy, 100, seed=6, context=[1.0, 0.0])
    policy.reset()
    assert policy.state() == LinUCB(ARMS, dim=2, alpha=0.5, floor=0.1, warmup=3).state()


def test_from_state_refuses_a_state_of_another_policy():
    with pytest.raises(ValueError, match="UCB1"):
        ThompsonSampling.from_state(UCB1(ARMS).state())


def test_clear_errors_for_bad_arms_floors_rewards_and_distributions():
    policy = UCB1(ARMS)
    with pytest.raises(ValueError, match="unknown arm 'jazz'"):
        policy.update("jazz", 1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        policy.update("drama", 2.0)
    with pytest.raises(ValueError, match="floor"):
        UCB1(ARMS, floor=1.0)
    with pytest.raises(ValueError, match="distinct"):
        UCB1(["drama", "drama"])
    with pytest.raises(ValueError, match="context of 2"):
        LinUCB(ARMS, dim=2).probabilities([1.0, 2.0, 3.0])

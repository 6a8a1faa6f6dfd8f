"""Sticky assignment and the allocation check: users keep their arm within a period, arms are drawn with exactly
their probabilities, and the check passes honest logs and flags dishonest ones.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from trending_assets.lib.bandit_allocation import allocation_srm, sticky_arm

ARMS = ["drama", "comedy", "thriller"]


def test_sticky_assignment_keeps_a_users_arm_within_a_period_and_redraws_the_next():
    p = {"drama": 0.2, "comedy": 0.3, "thriller": 0.5}
    users = [f"user-{i}" for i in range(20_000)]
    monday = [sticky_arm("home-rail", u, p, "2024-06-03") for u in users]
    assert monday == [sticky_arm("home-rail", u, dict(p), "2024-06-03") for u in users]
    tuesday = [sticky_arm("home-rail", u, p, "2024-06-04") for u in users]
    changed = np.mean([a != b for a, b in zip(monday, tuesday)])
    assert changed == pytest.approx(1 - (0.2**2 + 0.3**2 + 0.5**2), abs=0.02)  # independent draws per day
    counts = Counter(monday)
    assert chisquare([counts[a] for a in ARMS], [len(users) * p[a] for a in ARMS]).pvalue > 0.001


def test_sticky_assignment_never_draws_an_arm_with_probability_zero():
    p = {"drama": 0.0, "comedy": 0.25, "thriller": 0.75}
    assert "drama" not in {sticky_arm("s", f"user-{i}", p, "day") for i in range(5000)}


def test_allocation_srm_passes_honest_logs_and_flags_a_wrong_propensity():
    rng = np.random.default_rng(7)
    logged, honest, biased = [], [], []
    for t in range(20_000):
        best = 0 if t < 5000 else 2  # the favoured arm changes as the policy learns
        p = np.full(3, 0.1)
        p[best] = 0.8
        logged.append(p)
        honest.append(ARMS[rng.choice(3, p=p)])
        # A bug: the floor is logged but not applied, so the favoured arm really gets 0.85.
        q = np.full(3, 0.075)
        q[best] = 0.85
        biased.append(ARMS[rng.choice(3, p=q)])
    assert allocation_srm(honest, logged, ARMS).ok
    flagged = allocation_srm(biased, logged, ARMS)
    assert not flagged.ok and flagged.p_value < 0.001
    assert flagged.expected_shares == pytest.approx(tuple(np.mean(logged, axis=0)))


def test_allocation_srm_fails_an_arm_chosen_with_probability_zero():
    logged = [{"drama": 0.5, "comedy": 0.5, "thriller": 0.0}] * 10
    result = allocation_srm(["drama"] * 5 + ["comedy"] * 4 + ["thriller"], logged, ARMS)
    assert not result.ok and result.observed == (5, 4, 1)


def test_clear_errors_for_bad_distributions_and_logs():
    with pytest.raises(ValueError, match="summing to 1"):
        sticky_arm("s", "u", {"drama": 0.5, "comedy": 0.4}, "day")
    with pytest.raises(ValueError, match="unknown arms"):
        allocation_srm(["drama"], [{"drama": 0.5, "jazz": 0.5}], ARMS)
    with pytest.raises(ValueError, match="one logged distribution per chosen arm"):
        allocation_srm(["drama", "comedy"], [[0.5, 0.5, 0.0]], ARMS)

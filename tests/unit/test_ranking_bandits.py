"""The ranker bandit's analysis on synthetic logs: learning is a pure function of the logs, traffic moves to the
arm with more clicks within the floor, and the off-policy gate passes only the ranker that is better."""

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from trending_assets.lib import ranking_bandits

BANDIT = ranking_bandits.RankingBandit("b", "b-salt", ["popularity", "genre_taste"], 0.1, 100, [0.5, 0.5], "running",
                                       datetime(2026, 1, 1))


def logs(rates: dict[str, float], requests: int = 3000, seed: int = 0) -> pl.DataFrame:
    """Uniform logging (propensity 0.5): each request's reward is the share of 20 listed movies clicked."""
    rng = np.random.default_rng(seed)
    arms = rng.choice(list(rates), size=requests)
    rewards = rng.binomial(20, [rates[a] for a in arms]) / 20
    return pl.DataFrame({"user_id": [f"u{i}" for i in range(requests)], "arm": arms, "propensity": 0.5,
                         "reward": rewards})


def test_traffic_moves_to_the_ranker_with_more_clicks_and_the_gate_passes_only_it():
    result = ranking_bandits.analyse(BANDIT, logs({"popularity": 0.08, "genre_taste": 0.11}), n_resamples=300)
    weights = dict(zip(BANDIT.arms, result["weights"]))
    assert weights["genre_taste"] > 0.9 and weights["popularity"] == pytest.approx(0.05, abs=0.01)  # floor / 2
    rows = {row["arm"]: row for row in result["rows"]}
    assert rows["genre_taste"]["gate_passed"] and not rows["popularity"]["gate_passed"]
    assert rows["genre_taste"]["dr_low"] > result["logged_value"] > rows["popularity"]["dr_high"]
    assert rows["genre_taste"]["dr"] == pytest.approx(0.11, abs=0.005)  # close to the truth
    assert result["passed"] and result["passed"][0].startswith("always genre_taste: passed")


def test_equal_rankers_keep_both_arms_and_pass_no_gate():
    result = ranking_bandits.analyse(BANDIT, logs({"popularity": 0.1, "genre_taste": 0.1}, seed=1),
                                     n_resamples=300)
    assert not result["passed"]
    assert min(result["weights"]) > 0.1  # no confident winner: traffic stays split


def test_warm_up_keeps_the_split_even_and_learning_ignores_log_order():
    few = logs({"popularity": 0.02, "genre_taste": 0.2}, requests=150)
    assert ranking_bandits.analyse(BANDIT, few, n_resamples=100)["weights"] == [0.5, 0.5]  # < 100 per arm
    many = logs({"popularity": 0.08, "genre_taste": 0.11}, requests=1000, seed=2)
    shuffled = many.sample(fraction=1.0, shuffle=True, seed=3)
    assert (ranking_bandits.analyse(BANDIT, many, n_resamples=100)["weights"]
            == ranking_bandits.analyse(BANDIT, shuffled, n_resamples=100)["weights"])

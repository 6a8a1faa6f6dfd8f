"""The ranker bandit's analysis on synthetic logs: learning is a pure function of the logs, traffic moves to the
arm with more clicks within the floor, the off-policy gate passes only the ranker that is better, the allocation
audit catches arms that did not follow the logged weights, and old warehouses gain the policy columns."""

import dataclasses
import json
from datetime import datetime

import duckdb
import numpy as np
import polars as pl
import pytest

from trending_assets.lib import assignment, bandit_allocation, bandits, ranking_bandits

BANDIT = ranking_bandits.RankingBandit("b", "b-salt", ["popularity", "genre_taste"], 0.1, 100, [0.5, 0.5], "running",
                                       datetime(2026, 1, 1))
UNIFORM = json.dumps({"popularity": 0.5, "genre_taste": 0.5})


def logs(rates: dict[str, float], requests: int = 3000, seed: int = 0) -> pl.DataFrame:
    """Uniform logging (propensity 0.5): each request's reward is the share of 20 listed movies clicked."""
    rng = np.random.default_rng(seed)
    arms = rng.choice(list(rates), size=requests)
    rewards = rng.binomial(20, [rates[a] for a in arms]) / 20
    return pl.DataFrame({"user_id": [f"u{i}" for i in range(requests)], "arm": arms, "propensity": 0.5,
                         "reward": rewards, "weights": UNIFORM})


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


def served(bandit: ranking_bandits.RankingBandit, users: range, requests_of=lambda arm: 1,
           logged_weights: dict[str, float] | None = None, seed: int = 0) -> pl.DataFrame:
    """Logs as the router writes them: each user's arm from the plan's sticky assignment under the bandit's weights,
    ``requests_of(arm)`` requests per user, each logging ``logged_weights`` (the plan's own unless given)."""
    experiment, rng = bandit.plan_experiment(), np.random.default_rng(seed)
    weights = logged_weights or dict(zip(bandit.arms, bandit.weights))
    rows = []
    for i in users:
        user, arm = f"user-{i}", assignment.choose_variant(experiment, f"user-{i}").name
        rows += [{"user_id": user, "arm": arm, "propensity": weights[arm], "reward": rng.binomial(20, 0.1) / 20,
                  "weights": json.dumps(weights)} for _ in range(requests_of(arm))]
    return pl.DataFrame(rows)


def test_the_allocation_audit_passes_arms_drawn_from_the_logged_weights_and_flags_others():
    skewed = dataclasses.replace(BANDIT, weights=[0.2, 0.8])
    consistent = ranking_bandits.allocation_audit(skewed, served(skewed, range(2000)))
    assert consistent["ok"] and consistent["p_value"] > 0.01 and consistent["users"] == 2000
    assert consistent["observed"]["genre_taste"] == pytest.approx(1600, abs=90)  # 5 binomial standard deviations
    assert consistent["line"].startswith("allocation matches the logged weights")
    # The plan served 20/80 but the exposures claim 50/50 (a stale plan in one process, say): propensities are wrong.
    stale = ranking_bandits.allocation_audit(skewed, served(skewed, range(2000), logged_weights=json.loads(UNIFORM)))
    assert not stale["ok"] and stale["p_value"] < 0.001
    assert "MISMATCH" in stale["line"]
    assert f"popularity {stale['observed']['popularity']} users (expected 1000.0)" in stale["line"]


def test_the_audit_counts_each_user_once_and_skips_rows_without_weights():
    # genre_taste's users come back ten times: per request the arms look 1:10, per user they follow the weights
    heavy = served(BANDIT, range(1000), requests_of=lambda arm: 10 if arm == "genre_taste" else 1)
    audit = ranking_bandits.allocation_audit(BANDIT, heavy)
    assert audit["ok"] and audit["users"] == 1000 and sum(audit["observed"].values()) == 1000
    per_request = bandit_allocation.allocation_srm(heavy["arm"].to_list(),
                                                   [json.loads(w) for w in heavy["weights"]], BANDIT.arms)
    assert not per_request.ok  # what counting requests would have claimed
    # Rows logged before the router logged weights are skipped.
    old = served(BANDIT, range(1000, 1300)).with_columns(weights=pl.lit(None, pl.String))
    assert ranking_bandits.allocation_audit(BANDIT, pl.concat([old, heavy]))["users"] == 1000
    assert ranking_bandits.allocation_audit(BANDIT, old) is None
    assert ranking_bandits.analyse(BANDIT, old, n_resamples=20)["allocation_srm"] is None


def test_users_whom_their_arm_brought_back_are_not_new_draws_under_new_weights():
    first = served(BANDIT, range(1000))
    # The weights move to 30/70 and only genre_taste's users return (it served them well); the same hash gives most
    # of them genre_taste again. New users arrive too.
    moved = dataclasses.replace(BANDIT, weights=[0.3, 0.7])
    liked = set(first.filter(pl.col("arm") == "genre_taste")["user_id"])
    returning = served(moved, range(1000)).filter(pl.col("user_id").is_in(liked))
    logged = pl.concat([first, returning, served(moved, range(1000, 2000))])
    audit = ranking_bandits.allocation_audit(BANDIT, logged)
    assert audit["ok"] and audit["users"] == 2000
    assert audit["expected_shares"]["popularity"] == pytest.approx((0.5 + 0.3) / 2)  # each user under their first
    per_weights = logged.unique(["user_id", "weights"], keep="first", maintain_order=True)
    assert not bandit_allocation.allocation_srm(per_weights["arm"].to_list(),
                                                [json.loads(w) for w in per_weights["weights"]], BANDIT.arms).ok


@pytest.mark.parametrize(("policy", "params", "kind", "expected"), [
    ("ucb1", {}, bandits.UCB1, [0.05, 0.95]),  # all the policy's mass on the better arm, the floor spread evenly
    ("epsilon_greedy", {"epsilon": 0.1}, bandits.EpsilonGreedy, [0.095, 0.905]),  # epsilon, then the floor
])
def test_ucb1_and_epsilon_greedy_rebuilt_from_the_logs_move_traffic_to_the_better_ranker(policy, params, kind,
                                                                                        expected):
    bandit = dataclasses.replace(BANDIT, policy=policy, policy_params=params)
    assert isinstance(bandit.new_policy(), kind)
    better_second = ranking_bandits.analyse(bandit, logs({"popularity": 0.08, "genre_taste": 0.11}), n_resamples=50)
    assert better_second["weights"] == pytest.approx(expected)
    better_first = ranking_bandits.analyse(bandit, logs({"popularity": 0.11, "genre_taste": 0.08}), n_resamples=50)
    assert better_first["weights"] == pytest.approx(expected[::-1])


def test_off_policy_intervals_resample_users_not_requests():
    # 60 users share 3000 requests, and each user's taste shifts all their click rates alike
    rng = np.random.default_rng(4)
    user = rng.integers(0, 60, 3000)
    arms = rng.choice(BANDIT.arms, 3000)
    rate = np.where(arms == "genre_taste", 0.11, 0.08) + rng.normal(0, 0.04, 60)[user]
    frame = pl.DataFrame({"user_id": [f"u{u}" for u in user], "arm": arms, "propensity": 0.5,
                          "reward": rng.binomial(20, np.clip(rate, 0, 1)) / 20, "weights": UNIFORM})
    by_user = ranking_bandits.analyse(BANDIT, frame, n_resamples=300)["rows"]
    as_if_independent = ranking_bandits.analyse(
        BANDIT, frame.with_columns(user_id=pl.format("r{}", pl.int_range(pl.len()))), n_resamples=300)["rows"]
    for clustered, naive in zip(by_user, as_if_independent):
        assert clustered["dr"] == naive["dr"]
        for name in ("dr", "snips"):
            width = clustered[f"{name}_high"] - clustered[f"{name}_low"]
            assert width > 2 * (naive[f"{name}_high"] - naive[f"{name}_low"]), (name, clustered, naive)


OLD_DDL = """CREATE TABLE experiments.ranking_bandits (
    experiment_id VARCHAR PRIMARY KEY, salt VARCHAR NOT NULL, arms JSON NOT NULL, floor DOUBLE NOT NULL,
    warmup BIGINT NOT NULL, weights JSON NOT NULL, status VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL, verdict VARCHAR)"""


def test_a_warehouse_from_before_the_policy_columns_migrates_and_keeps_its_thompson_bandit():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA experiments")
    con.execute(OLD_DDL)
    con.execute("INSERT INTO experiments.ranking_bandits VALUES ('old', 'old-salt', ?, 0.1, 100, '[0.5, 0.5]', "
                "'running', '2026-01-01', '2026-01-01', NULL)", [json.dumps(["popularity", "genre_taste"])])
    ranking_bandits.ensure_schema(con)
    ranking_bandits.ensure_schema(con)  # a second run changes nothing
    [old] = ranking_bandits.running(con)
    assert (old.policy, old.policy_params) == ("thompson", {})
    assert isinstance(old.new_policy(), bandits.ThompsonSampling)
    new = ranking_bandits.start(con, "new", ["popularity", "genre_taste"], datetime(2026, 1, 2),
                                policy="epsilon_greedy", params={"epsilon": 0.2})
    assert (new.policy, new.policy_params, new.new_policy().epsilon) == ("epsilon_greedy", {"epsilon": 0.2}, 0.2)
    assert [b.experiment_id for b in ranking_bandits.running(con)] == ["old", "new"]
    result = ranking_bandits.analyse(old, served(old, range(500)), n_resamples=50)
    ranking_bandits.save(con, old, result)
    stored = dict(con.execute("SELECT experiment_id, allocation_p FROM experiments.ranking_bandits").fetchall())
    assert stored == {"old": pytest.approx(result["allocation_srm"]["p_value"]), "new": None}


def test_only_context_free_policies_can_be_served():
    con = duckdb.connect()
    with pytest.raises(ValueError, match="'linucb' cannot be served; use one of thompson, ucb1, epsilon_greedy"):
        ranking_bandits.start(con, "b", ["popularity", "genre_taste"], datetime(2026, 1, 1), policy="linucb")
    with pytest.raises(ValueError, match="epsilon is the share of traffic explored uniformly"):
        ranking_bandits.start(con, "b", ["popularity", "genre_taste"], datetime(2026, 1, 1),
                              policy="epsilon_greedy", params={"epsilon": 1.5})
    assert ranking_bandits.running(con) == []


def test_an_allocation_mismatch_holds_the_ope_gate():
    bandit, honest = BANDIT, logs({"popularity": 0.08, "genre_taste": 0.11})
    assert any(row["gate_passed"] for row in ranking_bandits.analyse(bandit, honest, n_resamples=200)["rows"])
    # the same logs claiming other weights than the arms followed: the propensities are wrong, so nothing passes
    lying = honest.with_columns(pl.lit('{"popularity": 0.05, "genre_taste": 0.95}').alias("weights"))
    result = ranking_bandits.analyse(bandit, lying, n_resamples=200)
    assert not result["allocation_srm"]["ok"]
    assert not any(row["gate_passed"] for row in result["rows"]) and result["passed"] == []
    assert all(row["reason"].startswith("held: ") for row in result["rows"] if row["arm"] == "genre_taste")

"""A/B tests of a serving surface (vibe-tag prompts): the store, the plan entry and the analysis' verdicts."""

from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest

from trending_assets.lib import ab_tests, deployment_plan
from trending_assets.lib.assignment import assign_variant

START = datetime(2026, 1, 1)


def daily(rates: dict[str, float], users: int = 1500, days: int = 3, impressions: int = 20, seed: int = 0,
          shares: dict[str, float] | None = None) -> pl.DataFrame:
    """Per user and day: impressions and clicks drawn with each variant's true click-through rate."""
    rng = np.random.default_rng(seed)
    names = list(rates)
    probabilities = [shares[n] for n in names] if shares else [1 / len(names)] * len(names)
    variant = rng.choice(names, size=users, p=probabilities)
    rows = []
    for day in range(days):
        for user, name in enumerate(variant):
            clicks = int(rng.binomial(impressions, rates[name]))
            rows.append((f"v{user:06d}", name, date(2026, 1, 2) + timedelta(days=day), impressions, clicks))
    return pl.DataFrame(rows, schema=["user_id", "variant", "day", "impressions", "clicks"], orient="row")


def test(name="vibe", planned=100_000, generators=("genre_moods_v2", "moods_v1")) -> ab_tests.ABTest:
    variants = [{"name": g, "generator": g, "weight": 1 / len(generators)} for g in generators]
    return ab_tests.ABTest(name, "vibe_tags", f"{name}-salt", variants, 100.0, 0.01, planned, "running", START)


test.__test__ = False  # a factory, not a test
NO_PRE = pl.DataFrame({"user_id": ["nobody"], "pre_click_rate": [0.0]})


def test_a_clearly_better_variant_wins_with_an_always_valid_p_value():
    result = ab_tests.analyse(test(), daily({"genre_moods_v2": 0.10, "moods_v1": 0.13}), NO_PRE)
    assert result["winner"] == "moods_v1"
    primary = next(r for r in result["rows"] if r["metric"] == ab_tests.PRIMARY)
    assert primary["diff"] == pytest.approx(0.03, abs=0.006)
    assert primary["sequential_p"] < 0.05 and primary["p_adjusted"] >= primary["p_value"]
    assert result["srm"]["ok"] and "moods_v1 wins" in result["reason"]


def test_identical_variants_decide_nothing_until_the_planned_sample_then_keep_control():
    result = ab_tests.analyse(test(), daily({"genre_moods_v2": 0.12, "moods_v1": 0.12}, seed=3), NO_PRE)
    assert result["winner"] is None and "no variant" in result["reason"]
    small = ab_tests.analyse(test(planned=500), daily({"genre_moods_v2": 0.12, "moods_v1": 0.12}, seed=3), NO_PRE)
    assert small["winner"] == "genre_moods_v2" and "no significant difference" in small["reason"]


def test_a_sample_ratio_mismatch_blocks_the_verdict():
    frame = daily({"genre_moods_v2": 0.10, "moods_v1": 0.14}, users=4000,
                  shares={"genre_moods_v2": 0.45, "moods_v1": 0.55})
    result = ab_tests.analyse(test(), frame, NO_PRE)
    assert not result["srm"]["ok"] and result["winner"] is None
    assert "sample ratio mismatch" in result["reason"]


def test_cuped_uses_the_pre_period_click_rate():
    frame = daily({"genre_moods_v2": 0.10, "moods_v1": 0.11}, seed=5)
    # a covariate that tracks each user's observed rate explains part of its variance
    per_user = frame.group_by("user_id").agg((pl.col("clicks").sum() / pl.col("impressions").sum()).alias("r"))
    rng = np.random.default_rng(1)
    pre = per_user.select("user_id", (pl.col("r") + rng.normal(0, 0.02, per_user.height)).alias("pre_click_rate"))
    primary = next(r for r in ab_tests.analyse(test(), frame, pre)["rows"] if r["metric"] == ab_tests.PRIMARY)
    assert primary["method"] == "cuped_welch_t" and primary["variance_reduction"] > 0.3


def test_running_tests_become_plan_experiments_and_assignment_is_by_their_salt(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    started = ab_tests.start(con, "vibe-tags", "vibe_tags", ["genre_moods_v2", "moods_v1"], START, mde=0.01)
    assert started.planned_users_per_arm > 1000  # the power analysis sized it
    with pytest.raises(ValueError, match="two different variants"):
        ab_tests.start(con, "bad", "vibe_tags", ["moods_v1", "moods_v1"], START)
    experiment = ab_tests.running(con)[0].plan_experiment()
    ref = deployment_plan.ModelRef("xgboost-v1", "xgboost", "/x", "0" * 64)
    plan = deployment_plan.build("xgboost-v1", {"xgboost-v1": ref}, experiments=(experiment,))
    seen = {assign_variant(plan, "vibe_tags", f"u{i}")[1].generator for i in range(200)}
    assert seen == {"genre_moods_v2", "moods_v1"}
    ab_tests.finish(con, "vibe-tags", "decided", "moods_v1 wins")
    assert ab_tests.running(con) == []

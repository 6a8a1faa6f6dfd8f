"""``rollout.decide`` on hand-built rollouts and analyses: each phase's hold, advance, rollback and verdict, and the
policy's validation. No database: ``decide`` is a pure function of its inputs."""

from __future__ import annotations

from datetime import datetime

import pytest

from trending_assets.lib import ab_stats, experiment_analysis, sequential
from trending_assets.lib.experiment_analysis import PRIMARY, Analysis, MetricResult
from trending_assets.lib.experiment_store import Rollout
from trending_assets.lib.rollout import RolloutPolicy, decide

T0 = datetime(2026, 3, 2)
POLICY = RolloutPolicy(shadow_min_requests=100, min_users_per_step=20)


def at(phase: str, percent: float, planned: int | None = None) -> Rollout:
    return Rollout("rollout-xgboost-v2", "xgboost-v1", "xgboost-v2", "rollout-xgboost-v2-salt", phase, percent, T0,
                   "auto", planned, None, T0, T0, None, None)


def shadow(requests: int = 150, error_rate: float = 0.0, p99: float = 12.0) -> dict:
    return {"shadow_version": "xgboost-v2", "requests": requests, "error_rate": error_rate, "agreement": 0.83,
            "latency_p50_ms": 4.0, "latency_p99_ms": p99, "per_genre_agreement": {}, "movies_compared": 10 * requests}


def metric(name: str, role: str, diff: float = 0.0, p: float = 0.5, control_mean: float = 0.1,
           n: int = 500) -> MetricResult:
    fixed = ab_stats.Comparison(name, "welch_t", n, n, control_mean, control_mean + diff, diff, diff - 0.01,
                                diff + 0.01, None, p, 0.05)
    # an always-valid interval consistent with p: it excludes 0 exactly when the result is significant
    half = abs(diff) / 2 if p < 0.05 else abs(diff) + 0.01
    return MetricResult(name, role, fixed, sequential.SequentialResult(3, p, diff - half, diff + half, 0.05, diff))


def analysis(control: int = 500, treatment: int = 500, share: float = 0.5, primary_diff: float = 0.0,
             primary_p: float = 0.5, breaches: tuple[str, ...] = (), sd: float = 0.05) -> Analysis:
    metrics = (metric(PRIMARY, "primary", primary_diff, primary_p),
               *(metric(m, "secondary") for m in experiment_analysis.SECONDARY),
               *(metric(m, "guardrail") for m in experiment_analysis.GUARDRAILS))
    srm = ab_stats.srm_check([control, treatment], [1 - share, share])
    return Analysis("rollout-xgboost-v2", "canary", 3, {"control": control, "canary": treatment}, srm, metrics,
                    {}, {}, breaches, sd)


# -- shadow --------------------------------------------------------------------------------------------------

def test_shadow_holds_until_it_has_enough_requests():
    assert decide(at("shadow", 0), POLICY).reason == "shadow has 0 of 100 requests"
    held = decide(at("shadow", 0), POLICY, shadow=shadow(requests=99))
    assert (held.action, held.phase, held.percent) == ("hold", "shadow", 0.0)
    assert held.reason == "shadow has 99 of 100 requests"


def test_a_healthy_shadow_advances_to_the_first_canary_step():
    passed = decide(at("shadow", 0), POLICY, shadow=shadow(requests=100))
    assert (passed.action, passed.phase, passed.percent) == ("advance", "canary", 1.0)
    assert "shadow passed on 100 requests" in passed.reason and passed.evidence["agreement"] == 0.83
    ramp = decide(at("shadow", 0), RolloutPolicy(ramp=(2.0, 10.0, 50.0)), shadow=shadow())
    assert ramp.percent == 2.0


@pytest.mark.parametrize("bad, words", [({"error_rate": 0.05}, "error rate 0.050 > 0.01"),
                                        ({"p99": 80.0}, "p99 latency 80.0 ms > 50.0 ms")])
def test_a_failing_shadow_is_rolled_back(bad, words):
    failed = decide(at("shadow", 0), POLICY, shadow=shadow(**bad))
    assert (failed.action, failed.phase, failed.percent) == ("rollback", "rolled_back", 0.0)
    assert failed.reason.startswith("shadow failed: ") and words in failed.reason


# -- canary ramp ---------------------------------------------------------------------------------------------

def test_a_canary_without_an_analysis_holds():
    assert decide(at("canary", 1.0), POLICY).action == "hold"


def test_a_canary_step_holds_below_its_minimum_users():
    held = decide(at("canary", 5.0), POLICY, analysis(control=380, treatment=19, share=0.05))
    assert (held.action, held.phase, held.percent) == ("hold", "canary", 5.0)
    assert held.reason == "19 of 20 challenger users at 5%"


def test_a_canary_step_with_enough_users_and_no_breach_ramps_up():
    step = decide(at("canary", 1.0), POLICY, analysis(control=1980, treatment=20, share=0.01))
    assert (step.action, step.phase, step.percent) == ("advance", "canary", 5.0)
    assert step.power_plan is None and step.evidence["users"] == {"control": 1980, "canary": 20}
    assert decide(at("canary", 5.0), POLICY, analysis(950, 50, 0.05)).percent == 25.0


def test_the_last_canary_step_starts_the_a_b_test_with_a_power_plan():
    sd = 0.05
    step = decide(at("canary", 25.0), POLICY, analysis(750, 250, 0.25, sd=sd), daily_users=400)
    assert (step.action, step.phase, step.percent) == ("advance", "ab", 50.0)
    needed = ab_stats.required_sample_size(0.1, POLICY.mde, POLICY.alpha, POLICY.power, kind="mean", sd=sd)
    assert step.power_plan["planned_users_per_arm"] == needed
    assert step.power_plan["expected_days"] == ab_stats.expected_duration_days(needed, 400, 1.0)
    assert step.power_plan["baseline"] == 0.1 and step.power_plan["mde"] == POLICY.mde
    assert f"needs {needed} users per arm" in step.reason
    # without a traffic estimate the days are unknown, the users are not
    unknown = decide(at("canary", 25.0), POLICY, analysis(750, 250, 0.25, sd=sd)).power_plan
    assert unknown["expected_days"] is None and unknown["planned_users_per_arm"] == needed


@pytest.mark.parametrize("phase, percent", [("canary", 1.0), ("canary", 25.0), ("ab", 50.0)])
def test_any_guardrail_breach_rolls_back(phase, percent):
    breach = "thumbs_down_rate worse in canary (sequential p=0.0010, diff +0.0100)"
    decision = decide(at(phase, percent), POLICY, analysis(breaches=(breach,), primary_diff=0.02, primary_p=1e-6))
    assert (decision.action, decision.phase, decision.percent) == ("rollback", "rolled_back", 0.0)
    assert decision.reason == f"guardrail breached at {percent:g}%: {breach}"


# -- the A/B test ----------------------------------------------------------------------------------------------

def test_a_sample_ratio_mismatch_invalidates_the_a_b_test_whatever_the_primary_says():
    decision = decide(at("ab", 50.0), POLICY, analysis(500, 300, primary_diff=0.02, primary_p=1e-6))
    assert (decision.action, decision.phase) == ("invalid", "invalid")
    assert decision.reason.startswith("sample ratio mismatch")


def test_an_improved_primary_validates_the_challenger():
    decision = decide(at("ab", 50.0, planned=400), POLICY, analysis(primary_diff=0.01, primary_p=0.001))
    assert (decision.action, decision.phase, decision.percent) == ("validate", "production-validated", 0.0)
    assert "diff +0.0100" in decision.reason and "SRM ok" in decision.reason


def test_a_harmed_primary_rejects_the_challenger():
    decision = decide(at("ab", 50.0), POLICY, analysis(primary_diff=-0.01, primary_p=0.001))
    assert (decision.action, decision.phase) == ("reject", "rejected")
    assert decision.reason.startswith(f"{PRIMARY} worse in the challenger")


def test_no_significant_change_by_the_planned_sample_rejects():
    decision = decide(at("ab", 50.0, planned=400), POLICY, analysis(500, 500))
    assert (decision.action, decision.phase) == ("reject", "rejected")
    assert "after 500 users per arm and 3 day(s) (planned 400 users" in decision.reason
    # the policy's cap wins over the power analysis
    capped = RolloutPolicy(max_ab_users_per_arm=1000)
    assert decide(at("ab", 50.0, planned=400), capped, analysis(500, 500)).action == "hold"


def test_an_a_b_test_that_reaches_its_longest_duration_rejects_however_few_users_it_has():
    # a returning audience: the planned users never arrive, so the duration cap decides
    short = RolloutPolicy(max_ab_days=3)
    decision = decide(at("ab", 50.0, planned=4000), short, analysis(500, 500))
    assert (decision.action, decision.phase) == ("reject", "rejected") and "at most 3 days" in decision.reason
    assert decide(at("ab", 50.0, planned=4000), RolloutPolicy(max_ab_days=4), analysis(500, 500)).action == "hold"


def test_an_a_b_test_short_of_its_sample_holds():
    decision = decide(at("ab", 50.0, planned=800), POLICY, analysis(500, 500))
    assert (decision.action, decision.phase, decision.percent) == ("hold", "ab", 50.0)
    assert "planned 800 per arm" in decision.reason


# -- the policy ------------------------------------------------------------------------------------------------

def test_the_policy_refuses_an_unknown_approval():
    with pytest.raises(ValueError, match="approval 'sometimes' must be one of auto, manual"):
        RolloutPolicy(approval="sometimes")


@pytest.mark.parametrize("ramp", [(5.0, 1.0, 50.0), (0.0, 5.0, 50.0), (1.0, 5.0, 75.0)])
def test_the_policy_refuses_a_ramp_that_does_not_increase_from_above_0_to_at_most_50(ramp):
    with pytest.raises(ValueError, match=r"increasing from above 0 to at most 50"):
        RolloutPolicy(ramp=ramp)


def test_a_one_step_ramp_is_refused_or_reaches_the_a_b_test():
    try:
        policy = RolloutPolicy(ramp=(50.0,))
    except ValueError:
        return
    first = decide(at("shadow", 0), policy, shadow=shadow())
    second = decide(at(first.phase, first.percent), policy, analysis())
    assert "ab" in (first.phase, second.phase)


def test_an_empty_ramp_is_refused_with_a_value_error():
    with pytest.raises(ValueError, match="ramp"):
        RolloutPolicy(ramp=())

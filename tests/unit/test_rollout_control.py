"""What ``rollout_sensor`` does each tick, without Dagster: on a real DuckDB file with three registered xgboost
versions (v1 the champion, v2 the staged challenger, v3 spare), every move checked in the registry, the experiment
state, the alias history and the published ``serving/plan.json``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from trending_assets.lib import deployment_plan, experiment_store, registry, rollout, rollout_control, rollout_review
from trending_assets.lib.home import TrendingHome
from trending_assets.lib.rollout import RolloutPolicy
from trending_assets.lib.warehouse import connect

ACTOR = "sensor:rollout_sensor"
EXPERIMENT = "rollout-xgboost-v2"
AUTO, MANUAL = RolloutPolicy(shadow_min_requests=10), RolloutPolicy(shadow_min_requests=10, approval="manual")
NOW = datetime(2026, 3, 1, 12)


@pytest.fixture()
def home(tmp_path: Path) -> TrendingHome:
    return TrendingHome(tmp_path / "home").ensure()


@pytest.fixture()
def con(home: TrendingHome, tmp_path: Path):
    """v1 in production and champion, v2 staged as challenger, v3 staged (not yet an alias)."""
    with connect(home.warehouse) as connection:
        for number in (1, 2, 3):
            folder = tmp_path / "models" / f"xgboost-v{number}"
            folder.mkdir(parents=True)
            (folder / "model.json").write_text(json.dumps({"trees": number}))
            registry.register(connection, "xgboost", folder, "stateless", "scheduled", None, "window-1", "abc1234",
                              {"max_depth": 4}, {"macro_f1": 0.6}, now=NOW)
            registry.set_stage(connection, f"xgboost-v{number}", "staging", "test:setup", "passed the gates")
        registry.set_stage(connection, "xgboost-v1", "production", "test:setup", "first champion")
        registry.set_alias(connection, "champion", "xgboost-v1", "test:setup", "first champion", expected=None)
        registry.set_alias(connection, "challenger", "xgboost-v2", "test:setup", "beat the champion offline")
        yield connection


def tick(con, home, policy=AUTO, proposal=None, champion_failure=None):
    return rollout_control.tick(con, home, policy, ACTOR, proposal, champion_failure)


def proposal(current: experiment_store.Rollout, action: str, to_phase: str, to_percent: float,
             reason: str = "the analysis says so", power_plan: dict | None = None) -> dict:
    """What ``rollout_review.Review.summary`` hands the sensor."""
    decision = rollout.Decision(action, to_phase, to_percent, reason, power_plan=power_plan)
    return rollout_review.Review(current, decision).summary()


def current(con, experiment_id: str = EXPERIMENT) -> experiment_store.Rollout:
    return experiment_store.get(con, experiment_id)


def published(home: TrendingHome) -> deployment_plan.DeploymentPlan:
    return deployment_plan.read(home.deployment_plan)


def to_ab(con, home, policy=AUTO) -> experiment_store.Rollout:
    """Start the rollout and move it through shadow and the first canary step to the A/B test at 50%."""
    tick(con, home, policy)
    shadow = rollout.decide(current(con), policy, shadow={"requests": 50, "error_rate": 0.0, "latency_p99_ms": 5.0,
                                                         "agreement": 0.9})
    tick(con, home, policy, rollout_review.Review(current(con), shadow).summary())
    tick(con, home, policy, proposal(current(con), "advance", "ab", 50.0,
                                     power_plan={"planned_users_per_arm": 800, "expected_days": 4}))
    return current(con)


# -- starting and ramping ----------------------------------------------------------------------------------------

def test_a_staged_challenger_starts_in_shadow_and_the_plan_shadows_it(con, home):
    moved, plan = tick(con, home)
    assert moved == [f"{EXPERIMENT}: shadow xgboost-v2 beside champion xgboost-v1"]
    started = current(con)
    assert (started.phase, started.percent, started.approval) == ("shadow", 0.0, "auto")
    assert (started.champion_version, started.challenger_version) == ("xgboost-v1", "xgboost-v2")
    assert started.step_started_at == datetime(1970, 1, 1)  # no traffic in the marts yet
    assert published(home) == plan
    assert (plan.champion, plan.shadows, plan.canary) == ("xgboost-v1", ("xgboost-v2",), None)
    assert plan.models["xgboost-v2"].artifact_sha256 == registry.get(con, "xgboost-v2").artifact_sha256
    assert experiment_store.history(con, EXPERIMENT)["actor"].to_list() == [ACTOR]
    # the next tick has nothing to do and republishes nothing
    assert tick(con, home) == ([], None)


def test_a_shadow_to_canary_proposal_is_applied_and_the_plan_routes_one_percent(con, home):
    tick(con, home)
    shadow = {"requests": 50, "error_rate": 0.0, "latency_p99_ms": 5.0, "agreement": 0.9}
    summary = rollout_review.Review(current(con), rollout.decide(current(con), AUTO, shadow=shadow)).summary()
    assert (summary["phase"], summary["to_phase"], summary["to_percent"]) == ("shadow", "canary", 1.0)
    moved, plan = tick(con, home, proposal=summary)
    assert moved == [f"{EXPERIMENT}: shadow 0% -> canary 1% ({summary['reason']})"]
    assert (current(con).phase, current(con).percent) == ("canary", 1.0)
    assert plan.shadows == () and plan.canary == deployment_plan.Canary(EXPERIMENT, "xgboost-v2", 1.0,
                                                                        f"{EXPERIMENT}-salt")
    assert published(home).canary.percent == 1.0
    # the same proposal again is stale (the rollout is no longer in shadow): ignored
    assert tick(con, home, proposal=summary) == ([], None)
    assert (current(con).phase, current(con).percent) == ("canary", 1.0)
    # and so is one for another percent, or a hold
    assert tick(con, home, proposal={**proposal(current(con), "advance", "canary", 25.0), "percent": 5.0}) == ([], None)
    assert tick(con, home, proposal=proposal(current(con), "hold", "canary", 1.0)) == ([], None)


def test_the_a_b_step_records_its_power_plan(con, home):
    ab = to_ab(con, home)
    assert (ab.phase, ab.percent, ab.planned_users_per_arm, ab.expected_days) == ("ab", 50.0, 800, 4)
    assert published(home).canary.percent == 50.0


# -- the verdict -------------------------------------------------------------------------------------------------

def test_a_validated_challenger_is_promoted_at_once_with_approval_auto(con, home):
    to_ab(con, home)
    moved, plan = tick(con, home, proposal=proposal(current(con), "validate", rollout.VALIDATED, 0.0, "won"))
    assert moved == [f"{EXPERIMENT}: ab 50% -> promoted 100% (won)"]
    assert (current(con).phase, current(con).percent) == ("promoted", 100.0)
    assert registry.list_aliases(con) == {"champion": "xgboost-v2", "production-validated": "xgboost-v2"}
    move = registry.alias_history(con, "champion")[-1]
    assert (move.from_version, move.to_version, move.actor) == ("xgboost-v1", "xgboost-v2", ACTOR)
    assert move.reason == "approval: auto; won"
    assert registry.get(con, "xgboost-v2").stage == "production"
    assert registry.resolve_alias(con, "challenger") is None  # removed, not pointing at the champion
    assert (plan.champion, plan.canary, plan.shadows) == ("xgboost-v2", None, ())
    assert experiment_store.history(con, EXPERIMENT)["to_phase"].to_list()[-2:] == [rollout.VALIDATED, "promoted"]


def test_with_approval_manual_a_person_promotes_the_validated_challenger(con, home):
    to_ab(con, home, MANUAL)
    moved, plan = tick(con, home, MANUAL, proposal(current(con), "validate", rollout.VALIDATED, 0.0, "won"))
    assert current(con).phase == "awaiting_approval"
    assert plan.champion == "xgboost-v1" and plan.canary is None  # the challenger stops serving while it waits
    assert registry.list_aliases(con)["production-validated"] == "xgboost-v2"

    after = rollout.approve(con, "xgboost-v2", "person:alice", "looks good")
    assert after.phase == "promoted"
    move = registry.alias_history(con, "champion")[-1]
    assert (move.to_version, move.actor, move.reason) == ("xgboost-v2", "person:alice", "approved: looks good")
    assert registry.get(con, "xgboost-v2").stage == "production"
    assert experiment_store.history(con, EXPERIMENT)["actor"].to_list()[-1] == "person:alice"
    # the sensor's next tick publishes the new champion (the plan on disk is out of date)
    moved, plan = tick(con, home, MANUAL)
    assert moved[0].startswith("plan republished: champion xgboost-v2") and plan.champion == "xgboost-v2"


def test_only_a_version_awaiting_approval_can_be_approved(con, home):
    with pytest.raises(ValueError, match=r"xgboost-v2 is not awaiting approval \(no experiment\)"):
        rollout.approve(con, "xgboost-v2", "person:alice", "too early")
    to_ab(con, home, MANUAL)
    with pytest.raises(ValueError, match=rf"xgboost-v2 is not awaiting approval \({EXPERIMENT}: ab\)"):
        rollout.approve(con, "xgboost-v2", "person:alice", "too early")
    assert registry.list_aliases(con)["champion"] == "xgboost-v1"


def test_a_rejected_challenger_stops_serving_and_does_not_start_again(con, home):
    to_ab(con, home)
    moved, plan = tick(con, home, proposal=proposal(current(con), "reject", "rejected", 0.0, "no better"))
    assert current(con).phase == "rejected" and current(con).decision_reason == "no better"
    assert plan.canary is None and plan.champion == "xgboost-v1"
    assert tick(con, home) == ([], None)  # a decided challenger does not start again


# -- rollbacks ---------------------------------------------------------------------------------------------------

def request(home: TrendingHome, name: str, body: dict | str) -> Path:
    path = home.serving_requests / name
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return path


def test_a_rollback_request_from_the_api_rolls_the_canary_back(con, home):
    to_ab(con, home)
    path = request(home, "rollback-20260301T120000-r1.json",
                   {"request_id": "r1", "target": "canary", "reason": "users complain"})
    moved, plan = tick(con, home)
    assert moved == [f"{EXPERIMENT}: ab 50% -> rolled_back (users complain (API request r1))"]
    assert current(con).phase == "rolled_back"
    assert "challenger" not in registry.list_aliases(con)
    removal = registry.alias_history(con, "challenger")[-1]
    assert (removal.to_version, removal.actor) == (None, "api:admin")
    assert plan.canary is None and published(home).canary is None
    assert not path.exists() and (home.serving_requests / "done" / path.name).exists()


def test_a_rollback_request_with_nothing_to_undo_is_answered_not_retried(con, home):
    tick(con, home)
    path = request(home, "rollback-1.json", {"request_id": "r2", "target": "champion", "reason": "why not"})
    unreadable = request(home, "rollback-2.json", "{not json")
    moved, _ = tick(con, home)
    assert len(moved) == 1 and moved[0].startswith("rollback request r2 refused: the champion xgboost-v1 has no "
                                                   "previous version")
    assert (home.serving_requests / "done" / path.name).exists()
    assert not unreadable.exists() and unreadable.with_suffix(".unreadable").exists()
    assert registry.list_aliases(con)["champion"] == "xgboost-v1" and current(con).phase == "shadow"
    assert tick(con, home) == ([], None)


def test_rolling_back_the_champion_after_a_promotion_restores_the_previous_one(con, home):
    to_ab(con, home)
    tick(con, home, proposal=proposal(current(con), "validate", rollout.VALIDATED, 0.0, "won"))
    line = rollout_control.rollback(con, "champion", "F1 fell in production", "person:bob")
    assert line == "champion rolled back xgboost-v2 -> xgboost-v1: F1 fell in production"
    move = registry.alias_history(con, "champion")[-1]
    assert (move.from_version, move.to_version, move.actor, move.reason) == (
        "xgboost-v2", "xgboost-v1", "person:bob", "rollback: F1 fell in production")
    assert current(con).phase == "rolled_back"
    assert experiment_store.history(con, EXPERIMENT)["actor"].to_list()[-1] == "person:bob"
    with pytest.raises(ValueError, match="must be 'canary' or 'champion'"):
        rollout_control.rollback(con, "everything", "oops", "person:bob")
    with pytest.raises(ValueError, match="no active rollout to roll back"):
        rollout_control.rollback(con, "canary", "oops", "person:bob")


def test_the_champion_guardrail_rolls_back_a_promoted_champion_but_not_the_first(con, home):
    assert rollout_control.champion_guardrail(con, ACTOR, "macro F1 0.41 < 0.50") is None
    assert registry.list_aliases(con)["champion"] == "xgboost-v1"
    to_ab(con, home)
    tick(con, home, proposal=proposal(current(con), "validate", rollout.VALIDATED, 0.0, "won"))
    moved, plan = tick(con, home, champion_failure="macro F1 0.41 < 0.50")
    assert moved == ["champion rolled back xgboost-v2 -> xgboost-v1: macro F1 0.41 < 0.50"]
    assert plan.champion == "xgboost-v1" and current(con).phase == "rolled_back"
    move = registry.alias_history(con, "champion")[-1]
    assert move.actor == ACTOR and "guardrail on the promoted champion" in move.reason
    # the rolled-back version is no longer a promotion to undo
    assert rollout_control.champion_guardrail(con, ACTOR, "still bad") is None


# -- one rollout at a time ---------------------------------------------------------------------------------------

def test_a_challenger_staged_during_a_rollout_waits_for_it_to_be_decided(con, home):
    tick(con, home)
    registry.set_alias(con, "challenger", "xgboost-v3", "test:setup", "a newer model")
    assert tick(con, home) == ([], None)
    assert [r.experiment_id for r in experiment_store.list_rollouts(con)] == [EXPERIMENT]
    assert published(home).shadows == ("xgboost-v2",)  # the running rollout keeps its shadow
    tick(con, home, proposal=proposal(current(con), "rollback", "rolled_back", 0.0, "shadow failed"))
    assert registry.list_aliases(con)["challenger"] == "xgboost-v3"  # not the rolled-back one's to remove
    moved, plan = tick(con, home)
    assert moved == ["rollout-xgboost-v3: shadow xgboost-v3 beside champion xgboost-v1"]
    assert plan.shadows == ("xgboost-v3",)


# -- the published plan ------------------------------------------------------------------------------------------

def test_a_removed_or_corrupt_plan_is_republished(con, home):
    _, plan = tick(con, home)
    home.deployment_plan.unlink()
    moved, again = tick(con, home)
    assert moved[0].startswith("plan republished:") and "no plan file" in moved[0]
    assert again.plan_id == plan.plan_id and published(home).plan_id == plan.plan_id
    home.deployment_plan.write_text("{half a plan")
    moved, _ = tick(con, home)
    assert "not valid JSON" in moved[0] and published(home).plan_id == plan.plan_id
    registry.set_alias(con, "champion", "xgboost-v3", "person:carol", "by hand")
    moved, plan = tick(con, home)
    assert moved == [f"plan republished: champion xgboost-v3 (the published plan {again.plan_id} was out of date)"]


def test_nothing_is_published_before_the_first_champion(home):
    with connect(home.warehouse) as con:
        assert rollout_control.tick(con, home, AUTO, ACTOR) == ([], None)
    assert not home.deployment_plan.exists()




def test_a_challenger_validated_after_the_champion_moved_is_not_left_in_limbo(con, home):
    to_ab(con, home)
    tick(con, home, proposal=proposal(current(con), "validate", rollout.VALIDATED, 0.0, "won"))
    registry.set_alias(con, "challenger", "xgboost-v3", "test:setup", "a newer model")
    tick(con, home)
    tick(con, home, proposal=proposal(current(con, "rollout-xgboost-v3"), "advance", "ab", 50.0))
    assert current(con, "rollout-xgboost-v3").champion_version == "xgboost-v2"
    # during v3's A/B test against v2, an operator rolls the champion back to v1
    request(home, "rollback-1.json", {"request_id": "r3", "target": "champion", "reason": "v2 misbehaves"})
    tick(con, home)
    assert registry.list_aliases(con)["champion"] == "xgboost-v1"
    # fails here: promote raises AliasConflictError after v3 was moved to production-validated, a phase that
    # is neither active, nor promoted, nor awaiting approval, so nothing ever moves it again
    tick(con, home, proposal=proposal(current(con, "rollout-xgboost-v3"), "validate", rollout.VALIDATED, 0.0, "won"))
    assert current(con, "rollout-xgboost-v3").phase != rollout.VALIDATED

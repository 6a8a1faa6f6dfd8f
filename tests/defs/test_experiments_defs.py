"""The rollout in Dagster: ``rollout_sensor`` starts and moves rollouts, ``experiments/rollout_analysis`` proposes
the next step (here from shadow traffic written the way the Router logs it), ``approve_job`` and ``rollback_job``
are a person's hands, and ``serving/deployment_plan`` publishes the plan.

Each test gets its own TRENDING_HOME, a registry with v1 the champion and v2 the staged challenger, and a
persistent Dagster instance (the sensor reads the analysis' materializations from it)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from trending_assets.defs.experiments.assets import KEY, rollout_analysis
from trending_assets.defs.experiments.jobs import approve_job, rollback_job
from trending_assets.defs.experiments.resources import RolloutSettings
from trending_assets.defs.experiments.sensors import ACTOR, rollout_sensor
from trending_assets.defs.serving.assets import deployment_job, deployment_plan
from trending_assets.defs.warehouse.resources import WarehouseResource
from trending_assets.lib import deployment_plan as plan_file
from trending_assets.lib import experiment_store, registry, rollout, rollout_control, rollout_review
from trending_assets.lib.home import TrendingHome
from trending_assets.lib.warehouse import connect

EXPERIMENT = "rollout-xgboost-v2"
SETTINGS = RolloutSettings(approval="auto", ramp="1,5,25,50", min_users_per_step=20, shadow_min_requests=5,
                           mde=0.004, lock_wait_s=5.0)


@pytest.fixture(scope="module")
def blank_instance(tmp_path_factory) -> Path:
    """A persistent instance's folder with its storage created once (copying it is much faster than a new one)."""
    folder = tmp_path_factory.mktemp("instance")
    dg.DagsterInstance.local_temp(str(folder)).dispose()
    return folder


@pytest.fixture()
def world(tmp_path: Path, blank_instance: Path):
    home = TrendingHome(tmp_path / "home").ensure()
    with connect(home.warehouse) as con:
        for number in (1, 2):
            folder = tmp_path / "models" / f"xgboost-v{number}"
            folder.mkdir(parents=True)
            (folder / "model.json").write_text(json.dumps({"trees": number}))
            registry.register(con, "xgboost", folder, "stateless", "scheduled", None, "window-1", "abc1234", {}, {})
            registry.set_stage(con, f"xgboost-v{number}", "staging", "test:setup", "passed the gates")
        registry.set_alias(con, "champion", "xgboost-v1", "test:setup", "first champion", expected=None)
        registry.set_alias(con, "challenger", "xgboost-v2", "test:setup", "beat the champion offline")
    shutil.copytree(blank_instance, home.dagster_home, dirs_exist_ok=True)
    instance = dg.DagsterInstance.local_temp(str(home.dagster_home))
    resources = {"warehouse": WarehouseResource(home_dir=str(home.root)), "rollout_settings": SETTINGS}
    yield home, instance, resources
    instance.dispose()


def evaluate(world, cursor: str | None = None):
    home, instance, resources = world
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    return rollout_sensor(context), context


def job(world, name: str) -> dg.JobDefinition:
    return dg.Definitions(assets=[deployment_plan], jobs=[approve_job, rollback_job, deployment_job],
                          resources=world[2]).resolve_job_def(name)


def rollout_now(world) -> experiment_store.Rollout:
    with connect(world[0].warehouse) as con:
        return experiment_store.get(con, EXPERIMENT)


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    return {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}


def log_shadow_traffic(home: TrendingHome, requests: int, first: datetime) -> None:
    """``shadow_prediction`` rows as the Router's ``_shadow`` writes them, in a minimal fct_feedback_events."""
    with connect(home.warehouse) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        con.execute("CREATE TABLE IF NOT EXISTS marts.fct_feedback_events (event_type VARCHAR, model_version "
                    "VARCHAR, occurred_at TIMESTAMP, payload JSON)")
        for i in range(requests):
            payload = {"request_id": f"r{i}", "surface": "trending", "shadow_version": "xgboost-v2", "status": "ok",
                       "genres": [["Drama"], ["Comedy"] if i % 2 else ["Comedy", "Romance"]],
                       "served_genres": [["Drama"], ["Comedy"]], "latency_ms": 3.0 + i}
            con.execute("INSERT INTO marts.fct_feedback_events VALUES ('shadow_prediction', 'xgboost-v2', ?, ?)",
                        [first + timedelta(minutes=i), json.dumps(payload, separators=(",", ":"))])


# -- the sensor ----------------------------------------------------------------------------------------------

def test_the_sensor_starts_a_rollout_and_asks_for_the_deployment_job(world):
    request, context = evaluate(world)
    assert isinstance(request, dg.RunRequest) and rollout_sensor.job_name == "deployment_job"
    assert request.tags["trending/rollout"] == f"{EXPERIMENT}: shadow xgboost-v2 beside champion xgboost-v1"
    plan = plan_file.read(world[0].deployment_plan)  # the sensor published it before asking for the job
    assert plan.shadows == ("xgboost-v2",) and request.run_key == f"plan-{plan.plan_id}-{context.cursor}"
    assert rollout_now(world).phase == "shadow"
    assert json.loads(context.cursor) == {"analysis": 0, "champion_check": 0}

    again, _ = evaluate(world, context.cursor)
    assert isinstance(again, dg.SkipReason)
    assert again.skip_message == "nothing to move: no new analysis"


def test_the_analysis_of_enough_shadow_traffic_proposes_the_canary_and_the_sensor_applies_it(world):
    home, instance, resources = world
    _, context = evaluate(world)
    log_shadow_traffic(home, 4, datetime(2026, 3, 2, 9))
    held = dg.materialize([rollout_analysis], resources=resources, instance=instance)
    assert (metadata(held)["action"], metadata(held)["decision_reason"]) == ("hold", "shadow has 4 of 5 requests")
    request, context = evaluate(world, context.cursor)
    assert isinstance(request, dg.SkipReason) and request.skip_message == "nothing to move: shadow has 4 of 5 requests"

    log_shadow_traffic(home, 2, datetime(2026, 3, 2, 10))
    result = dg.materialize([rollout_analysis], resources=resources, instance=instance)
    assert result.success
    meta = metadata(result)
    assert (meta["experiment_id"], meta["phase"], meta["action"]) == (EXPERIMENT, "shadow", "advance")
    assert meta["decision"]["to_phase"] == "canary" and meta["decision"]["to_percent"] == 1.0
    assert "shadow passed on 6 requests (agreement 0.75" in meta["decision_reason"]
    assert Path(meta["plot"]).exists() and "Shadow xgboost-v2: 6 requests" in meta["report"]
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["rollout_guardrails"].passed and checks["sample_ratio"].passed
    with connect(home.warehouse) as con:
        saved = con.sql("SELECT requests, agreement FROM experiments.shadow_reports ORDER BY analysed_at").fetchall()
    assert saved == [(4, 0.75), (6, 0.75)]

    request, context = evaluate(world, context.cursor)
    assert isinstance(request, dg.RunRequest)
    assert request.tags["trending/rollout"].startswith(f"{EXPERIMENT}: shadow 0% -> canary 1%")
    assert (rollout_now(world).phase, rollout_now(world).percent) == ("canary", 1.0)
    assert plan_file.read(home.deployment_plan).canary.percent == 1.0
    # the analysis was consumed: the next tick does not apply it again
    assert isinstance(evaluate(world, context.cursor)[0], dg.SkipReason)


def test_the_deployment_job_the_sensor_asks_for_runs(world):
    request, _ = evaluate(world)
    result = job(world, "deployment_job").execute_in_process(instance=world[1], tags=request.tags)
    assert result.success and metadata(result)["shadows"] == "xgboost-v2"


# -- the assets ----------------------------------------------------------------------------------------------

def test_the_analysis_without_an_active_rollout_says_so_and_its_checks_pass(world):
    home, instance, resources = world
    result = dg.materialize([rollout_analysis], resources=resources, instance=instance)
    assert result.success and metadata(result) == {"status": "no active rollout"}
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {"rollout_guardrails", "sample_ratio"}
    assert all(c.passed and c.metadata["insufficient_data"].value for c in checks)
    assert rollout_analysis.key == KEY


def test_the_deployment_plan_asset_publishes_the_champion(world):
    home, instance, resources = world
    result = dg.materialize([deployment_plan], resources={"warehouse": resources["warehouse"]}, instance=instance)
    meta = metadata(result)
    plan = plan_file.read(home.deployment_plan)
    assert (meta["plan_id"], meta["champion"], meta["canary"], meta["shadows"]) == (plan.plan_id, "xgboost-v1",
                                                                                   "none", "none")
    assert meta["plan"]["champion"] == "xgboost-v1"


# -- a person's hands ----------------------------------------------------------------------------------------

def to_awaiting_approval(world) -> None:
    """A manual-approval rollout of v2 that won its A/B test."""
    home = world[0]
    policy = rollout.RolloutPolicy(approval="manual")
    with connect(home.warehouse) as con:
        rollout_control.tick(con, home, policy, ACTOR)
        for phase, percent, action, to_phase, to_percent in [
                ("shadow", 0.0, "advance", "ab", 50.0), ("ab", 50.0, "validate", rollout.VALIDATED, 0.0)]:
            decision = rollout.Decision(action, to_phase, to_percent, "the analysis says so")
            summary = rollout_review.Review(experiment_store.get(con, EXPERIMENT), decision).summary()
            assert (summary["phase"], summary["percent"]) == (phase, percent)
            rollout_control.tick(con, home, policy, ACTOR, summary)
        assert experiment_store.get(con, EXPERIMENT).phase == "awaiting_approval"


def test_approve_job_promotes_the_waiting_challenger_in_the_approvers_name(world):
    home, instance, _ = world
    to_awaiting_approval(world)
    config = {"ops": {"approve_promotion": {"config": {"version": "xgboost-v2", "reason": "A/B won, looks good",
                                                       "approver": "alice"}}}}
    assert job(world, "approve_job").execute_in_process(run_config=config, instance=instance).success
    with connect(home.warehouse) as con:
        move = registry.alias_history(con, "champion")[-1]
        assert (move.to_version, move.actor, move.reason) == ("xgboost-v2", "person:alice",
                                                              "approved: A/B won, looks good")
    assert rollout_now(world).phase == "promoted"
    assert plan_file.read(home.deployment_plan).champion == "xgboost-v2"


def test_approve_job_fails_for_a_version_not_awaiting_approval(world):
    config = {"ops": {"approve_promotion": {"config": {"version": "xgboost-v2", "reason": "eager",
                                                       "approver": "alice"}}}}
    result = job(world, "approve_job").execute_in_process(run_config=config, instance=world[1], raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("approve_promotion").error
    assert "xgboost-v2 is not awaiting approval (no experiment)" in failure.cause.message


def test_rollback_job_rolls_back_the_canary_and_then_the_champion(world):
    home, instance, _ = world
    to_awaiting_approval(world)
    approve = {"ops": {"approve_promotion": {"config": {"version": "xgboost-v2", "reason": "ok", "approver": "alice"}}}}
    assert job(world, "approve_job").execute_in_process(run_config=approve, instance=instance).success

    config = {"ops": {"roll_back": {"config": {"reason": "complaints after the promotion", "actor": "bob",
                                               "target": "champion"}}}}
    assert job(world, "rollback_job").execute_in_process(run_config=config, instance=instance).success
    with connect(home.warehouse) as con:
        move = registry.alias_history(con, "champion")[-1]
        assert (move.from_version, move.to_version, move.actor) == ("xgboost-v2", "xgboost-v1", "person:bob")
        assert move.reason == "rollback: complaints after the promotion"
    assert rollout_now(world).phase == "rolled_back"
    assert plan_file.read(home.deployment_plan).champion == "xgboost-v1"


def test_rollback_job_ends_an_active_canary(world):
    home, instance, _ = world
    evaluate(world)
    config = {"ops": {"roll_back": {"config": {"reason": "shadow looks odd", "actor": "bob"}}}}  # target: canary
    assert job(world, "rollback_job").execute_in_process(run_config=config, instance=instance).success
    assert rollout_now(world).phase == "rolled_back"
    with connect(home.warehouse) as con:
        removal = registry.alias_history(con, "challenger")[-1]
        assert (removal.to_version, removal.actor) == (None, "person:bob")
        assert experiment_store.history(con, EXPERIMENT)["actor"].to_list()[-1] == "person:bob"
    assert plan_file.read(home.deployment_plan).shadows == ()

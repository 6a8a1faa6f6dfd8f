"""The retrain triggers and how retrain runs end, in Dagster, on a small stable world.

In order: the volume sensor bootstraps the first retrain (no champion) and remembers it in its cursor; the
schedule asks weekly and is refused while that request is in flight; retrain_job runs (window, train, evaluate,
gate, stage) and its outcome is written back; the cooldown refuses an automatic trigger but not a manual one; a
run that fails for real lands an alert feedback event, one held back by the gates does not.
"""

import json
from datetime import UTC, date, datetime

import dagster as dg
import pytest
from dagster_dbt import DbtCliResource

from trending_assets.defs.dbt.assets import trending_dbt
from trending_assets.defs.dbt.resources import DBT_EXECUTABLE, dbt_project
from trending_assets.defs.ingest.assets import raw_assets
from trending_assets.defs.models.resources import WandbResource
from trending_assets.defs.retraining.jobs import retrain_job, retrain_selection
from trending_assets.defs.retraining.outcomes import (
    retrain_succeeded_sensor,
    run_failure_alert_sensor,
)
from trending_assets.defs.retraining.requests import LOG_ID_TAG, TRIGGER_TAG
from trending_assets.defs.retraining.resources import RetrainPolicy
from trending_assets.defs.retraining.schedules import weekly_retrain_schedule
from trending_assets.defs.retraining.sensors import volume_retrain_sensor
from trending_assets.defs.windows.assets import backtest_slice, static_test_set
from trending_assets.lib import retraining_log
from trending_assets.lib.simulator import simulate
from trending_assets.lib.warehouse import connect

START = date(2026, 2, 2)
RANGE = "dagster/asset_partition_range_{}"
XGB = {"n_rounds": 30, "extra_rounds": 5, "nthread": 1, "n_hash_features": 4096}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Eight stable days ingested and built; a policy that retrains XGBoost after 100 new labeled movies."""
    from trending_assets.defs.warehouse.resources import WarehouseResource
    from trending_assets.lib.home import TrendingHome

    home = TrendingHome(tmp_path_factory.mktemp("retraining") / "home").ensure()
    resources = {"warehouse": WarehouseResource(home_dir=str(home.root)),
                 "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
                 "wandb": WandbResource(mode="disabled", directory=str(home.wandb)),
                 "retrain_policy": RetrainPolicy(cooldown_hours=24, min_new_labeled=100, families="xgboost")}
    # a persistent instance: a schedule context needs an instance it can refer to, which an ephemeral one is not
    instance = dg.DagsterInstance.local_temp(str(home.root / "dagster"))
    simulate(home, START, 8, seed=11, movies_per_day=50, users=20)
    tags = {RANGE.format("start"): START.isoformat(), RANGE.format("end"): "2026-02-09"}
    assert dg.materialize(raw_assets, resources=resources, instance=instance, tags=tags).success
    assert dg.materialize([trending_dbt, static_test_set, backtest_slice], resources=resources,
                          instance=instance).success
    return home, instance, resources


def retrain_job_def(world) -> dg.JobDefinition:
    """retrain_job over the real window and model assets, with this world's resources."""
    from trending_assets.defs.models import evaluation, training
    from trending_assets.defs.windows.assets import training_window

    families = ("xgboost", "transformer")
    assets = [static_test_set, backtest_slice, training_window, training.xgboost_candidate,
              training.transformer_candidate] + [getattr(evaluation, f"{f}_{step}") for f in families
                                                  for step in ("evaluation", "staging")]
    checks = [getattr(evaluation, f"{f}_gates") for f in families]
    return dg.Definitions(assets=assets, asset_checks=checks, jobs=[retrain_job],
                          resources=world[2]).resolve_job_def("retrain_job")


def log(world) -> list[retraining_log.LogEntry]:
    with connect(world[0].warehouse) as con:
        return retraining_log.history(con)


def sensor_resources(world) -> dict:
    return {"warehouse": world[2]["warehouse"], "retrain_policy": world[2]["retrain_policy"]}


def execute(world, request: dg.RunRequest, run_config=None) -> dg.ExecuteInProcessResult:
    home, instance, resources = world
    job = retrain_job_def(world)
    config = run_config or {"ops": {"ml__xgboost_candidate": {"config": XGB}}}
    return job.execute_in_process(instance=instance, asset_selection=list(request.asset_selection),
                                  tags=dict(request.tags), run_config=config, raise_on_error=False)


def run_event(instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType) -> dg.DagsterEvent:
    return instance.all_logs(run_id, of_type=event_type)[0].dagster_event


def test_the_schedule_is_weekly_and_targets_retrain_job():
    assert weekly_retrain_schedule.cron_schedule == "0 6 * * 1"
    assert weekly_retrain_schedule.execution_timezone == "UTC"
    assert weekly_retrain_schedule.job_name == retrain_job.name


def test_volume_sensor_bootstraps_a_retrain_and_remembers_it(world):
    context = dg.build_sensor_context(instance=world[1], resources=sensor_resources(world))
    request = volume_retrain_sensor(context)
    assert isinstance(request, dg.RunRequest)
    assert request.tags[TRIGGER_TAG] == "volume"
    assert request.asset_selection == retrain_selection(["xgboost"])
    entry = log(world)[0]
    assert (entry.kind, entry.decision, entry.id) == ("volume", "run", int(request.tags[LOG_ID_TAG]))
    assert "with no champion yet" in entry.reason and entry.evidence["new_labeled_movies"] >= 100
    cursor = json.loads(context.cursor)
    assert cursor == {"champion": "none", "new_at_last_request": entry.evidence["new_labeled_movies"]}
    # the same movies never ask twice
    again = volume_retrain_sensor(dg.build_sensor_context(instance=world[1], cursor=context.cursor,
                                                          resources=sensor_resources(world)))
    assert isinstance(again, dg.SkipReason) and "since the last volume request" in again.skip_message


def test_the_schedule_is_refused_while_a_retrain_is_pending(world):
    due = datetime(2026, 2, 9, 6, tzinfo=UTC)
    with dg.build_schedule_context(instance=world[1], scheduled_execution_time=due,
                                   resources=sensor_resources(world)) as context:
        answer = weekly_retrain_schedule(context)
    assert isinstance(answer, dg.SkipReason) and "in flight" in answer.skip_message
    entry = log(world)[0]
    assert entry.kind == "schedule" and entry.decision == "skip" and entry.evidence["cron"] == "0 6 * * 1"


def test_retrain_job_trains_gates_and_stages_and_its_outcome_is_logged(world):
    home, instance, resources = world
    volume_entry = next(e for e in log(world) if e.kind == "volume")
    request = dg.RunRequest(asset_selection=retrain_selection(["xgboost"]),
                            tags={LOG_ID_TAG: str(volume_entry.id), TRIGGER_TAG: "volume"})
    result = execute(world, request)
    assert result.success
    staged = result.asset_materializations_for_node("ml__xgboost_staging")[0].metadata
    assert staged["version_id"].value == "xgboost-v1" and staged["alias"].value == "champion"
    window = result.asset_materializations_for_node("ml__training_window")
    assert len(window) == 1  # the retrain builds a fresh window
    success = run_event(instance, result.run_id, dg.DagsterEventType.RUN_SUCCESS)
    retrain_succeeded_sensor(dg.build_run_status_sensor_context(
        "retrain_succeeded_sensor", success, instance, instance.get_run_by_id(result.run_id),
        resources=sensor_resources(world)))
    entry = next(e for e in log(world) if e.id == volume_entry.id)
    assert (entry.run_id, entry.outcome) == (result.run_id, "success")


def test_cooldown_refuses_an_automatic_trigger_but_not_a_manual_one(world):
    from trending_assets.defs.retraining.requests import answer
    from trending_assets.lib.retrain_triggers import Trigger

    home, instance, resources = world
    now = datetime.now(UTC).replace(tzinfo=None)
    policy = resources["retrain_policy"]
    with connect(home.warehouse) as con:
        drift, _ = answer(Trigger("drift", "vocabulary drift", now, "test"), con, instance, policy)
        manual, entry = answer(Trigger("manual", "a person asked", now, "test"), con, instance, policy)
    assert not drift.run and "cooldown" in drift.reason
    assert manual.run and "bypasses" in manual.reason
    assert [e.decision for e in log(world)[:2]] == ["run", "skip"]


def test_a_real_failure_lands_an_alert_and_a_gate_hold_back_does_not(world):
    home, instance, resources = world
    entries = log(world)
    manual = entries[0]
    # a one-round model with no tolerance: the gates hold it back, and the run "fails" by design
    held = execute(world, dg.RunRequest(asset_selection=retrain_selection(["xgboost"]),
                                        tags={LOG_ID_TAG: str(manual.id), TRIGGER_TAG: "manual"}),
                   run_config={"ops": {"ml__xgboost_candidate": {"config": {**XGB, "force_mode": "stateless",
                                                                            "n_rounds": 1}},
                                       "xgboost_gates": {"config": {"tolerance": 0.0}}}})
    assert not held.success
    failure = run_event(instance, held.run_id, dg.DagsterEventType.RUN_FAILURE)
    run_failure_alert_sensor(dg.build_run_status_sensor_context(
        "run_failure_alert_sensor", failure, instance, instance.get_run_by_id(held.run_id),
        resources=sensor_resources(world)).for_run_failure())
    assert next(e for e in log(world) if e.id == manual.id).outcome == "held back"
    assert not list(home.landing_dir("feedback").glob("alerts_*"))

    # a config the trainer rejects breaks the run for real: outcome failure, and an alert event lands
    broken = execute(world, dg.RunRequest(asset_selection=retrain_selection(["xgboost"]),
                                          tags={LOG_ID_TAG: str(manual.id), TRIGGER_TAG: "manual"}),
                     run_config={"ops": {"ml__xgboost_candidate": {"config": {**XGB, "force_mode": "sideways"}}}})
    assert not broken.success
    failure = run_event(instance, broken.run_id, dg.DagsterEventType.RUN_FAILURE)
    run_failure_alert_sensor(dg.build_run_status_sensor_context(
        "run_failure_alert_sensor", failure, instance, instance.get_run_by_id(broken.run_id),
        resources=sensor_resources(world)).for_run_failure())
    entry = next(e for e in log(world) if e.id == manual.id)
    assert (entry.run_id, entry.outcome) == (broken.run_id, "failure")
    alerts = list(home.landing_dir("feedback").glob("alerts_*.jsonl"))
    assert len(alerts) == 1
    event = json.loads(alerts[0].read_text())
    assert event["event_type"] == "alert" and json.loads(event["payload"])["run_id"] == broken.run_id
    # the champion is untouched by either run
    with connect(home.warehouse) as con:
        champion = con.execute("SELECT version_id FROM ml.model_aliases WHERE alias = 'champion'").fetchall()
    assert champion == [("xgboost-v1",)]

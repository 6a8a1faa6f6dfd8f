"""The monitors in Dagster on a small vocabulary-drift world: the drift report and performance assets, their
checks, and the sensors that turn a failed check into a retrain request.

The tests share one world and run in order: before any champion the monitors have nothing to compare with; a
champion trained on the stable first week sees no drift in the last stable days; once drifted days land the
vocabulary check fails, and drift_retrain_sensor asks for a retrain exactly once per failure.
"""

import json
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster_dbt import DbtCliResource

from trending_assets.defs.dbt.assets import trending_dbt
from trending_assets.defs.dbt.resources import DBT_EXECUTABLE, dbt_project
from trending_assets.defs.ingest.assets import raw_assets
from trending_assets.defs.models.evaluation import xgboost_evaluation, xgboost_gates, xgboost_staging
from trending_assets.defs.models.resources import WandbResource
from trending_assets.defs.models.training import xgboost_candidate
from trending_assets.defs.monitoring.drift import drift_report_asset
from trending_assets.defs.monitoring.performance import model_performance
from trending_assets.defs.retraining.requests import EVIDENCE_TAG, LOG_ID_TAG, TRIGGER_TAG
from trending_assets.defs.retraining.resources import RetrainPolicy
from trending_assets.defs.retraining.sensors import drift_retrain_sensor, performance_retrain_sensor
from trending_assets.defs.windows.assets import backtest_slice, static_test_set, training_window
from trending_assets.lib import retraining_log
from trending_assets.lib.simulator import simulate
from trending_assets.lib.warehouse import connect

START = date(2026, 3, 2)
DRIFT_START = START + timedelta(days=10)
WINDOWS = [static_test_set, backtest_slice, training_window]
CHAIN = [xgboost_candidate, xgboost_evaluation, xgboost_gates, xgboost_staging]
RANGE = "dagster/asset_partition_range_{}"
XGB = {"ops": {"ml__xgboost_candidate": {"config": {"n_rounds": 40, "extra_rounds": 5, "nthread": 1,
                                                    "n_hash_features": 4096}}}}
NO_EMBEDDING = {"ops": {"monitoring__drift_report": {"config": {"embedding": False}}}}


def land(world, first: date, days: int) -> None:
    home, instance, resources = world
    simulate(home, first, days, scenario="vocabulary_drift", seed=3, movies_per_day=80, users=30,
             drift_start=DRIFT_START)
    last = first + timedelta(days=days - 1)
    tags = {RANGE.format("start"): first.isoformat(), RANGE.format("end"): last.isoformat()}
    assert dg.materialize(raw_assets, resources=resources, instance=instance, tags=tags).success
    assert dg.materialize([trending_dbt, static_test_set, backtest_slice], resources=resources,
                          instance=instance).success


def monitor(world, asset, run_config=None) -> dg.ExecuteInProcessResult:
    home, instance, resources = world
    return dg.materialize([asset, *WINDOWS], selection=[asset], resources=resources, instance=instance,
                          run_config=run_config)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from trending_assets.defs.warehouse.resources import WarehouseResource
    from trending_assets.lib.home import TrendingHome

    home = TrendingHome(tmp_path_factory.mktemp("monitoring") / "home").ensure()
    resources = {"warehouse": WarehouseResource(home_dir=str(home.root)),
                 "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
                 "wandb": WandbResource(mode="disabled", directory=str(home.wandb)),
                 "retrain_policy": RetrainPolicy(cooldown_hours=0, min_new_labeled=100, families="xgboost")}
    instance = dg.DagsterInstance.ephemeral()
    world = (home, instance, resources)
    land(world, START, 8)
    return world


def sensor_context(world, cursor=None) -> dg.SensorEvaluationContext:
    home, instance, resources = world
    return dg.build_sensor_context(instance=instance, cursor=cursor, resources={
        "warehouse": resources["warehouse"], "retrain_policy": resources["retrain_policy"]})


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def test_without_a_champion_the_monitors_report_insufficient_data_and_pass(world):
    drift = monitor(world, drift_report_asset, NO_EMBEDDING)
    assert drift.success
    checks = checks_of(drift)
    assert set(checks) == {"no_dataset_drift", "no_vocabulary_drift", "no_label_drift", "no_prediction_drift",
                           "no_embedding_drift"}
    assert all(c.passed for c in checks.values())
    assert all("no champion" in c.description for c in checks.values())
    performance = monitor(world, model_performance)
    assert performance.success
    check = checks_of(performance)["champion_performance"]
    assert check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "insufficient data" in check.description


def test_a_champion_from_the_stable_days_sees_no_drift_in_stable_data(world):
    home, instance, resources = world
    trained = dg.materialize([*WINDOWS, *CHAIN], selection=[training_window, *CHAIN], resources=resources,
                             instance=instance, run_config=XGB)
    assert trained.success
    result = monitor(world, drift_report_asset, NO_EMBEDDING)
    checks = checks_of(result)
    for name in ("no_dataset_drift", "no_vocabulary_drift", "no_label_drift"):
        assert checks[name].passed, (name, checks[name].description)
        assert checks[name].severity == dg.AssetCheckSeverity.ERROR
    assert checks["no_prediction_drift"].severity == dg.AssetCheckSeverity.WARN
    metadata = result.asset_materializations_for_node("monitoring__drift_report")[0].metadata
    assert metadata["champion"].value == "xgboost-v1"
    assert metadata["drift_detected"].value is False
    assert "| signal |" in metadata["report"].value and "data:image/png;base64," in metadata["report"].value
    assert Path(metadata["plot"].value).exists()
    with connect(home.warehouse) as con:
        rows = con.execute("SELECT DISTINCT signal FROM monitoring.drift_reports WHERE report_id = ?",
                           [metadata["report_id"].value]).fetchall()
    assert {r[0] for r in rows} == {"data", "vocabulary", "prediction", "label"}  # no embedder configured
    # nothing failed, so the drift sensor asks for nothing and moves its cursor past these evaluations
    answer = drift_retrain_sensor(sensor_context(world))
    assert isinstance(answer, dg.SkipReason) and "no new failed evaluation" in answer.skip_message


def test_drifted_days_fail_the_vocabulary_check_and_request_one_retrain(world):
    home, instance, resources = world
    land(world, START + timedelta(days=8), 6)  # the last four days are drifted
    result = monitor(world, drift_report_asset, NO_EMBEDDING)
    assert result.success  # a failed drift check is an alarm, not a broken run
    checks = checks_of(result)
    vocabulary = checks["no_vocabulary_drift"]
    assert not vocabulary.passed and vocabulary.severity == dg.AssetCheckSeverity.ERROR
    assert "vocabulary drift" in vocabulary.description

    context = sensor_context(world)
    request = drift_retrain_sensor(context)
    assert isinstance(request, dg.RunRequest)
    assert request.tags[TRIGGER_TAG] == "drift"
    evidence = json.loads(request.tags[EVIDENCE_TAG])
    assert "no_vocabulary_drift" in evidence and evidence["no_vocabulary_drift"]["value"] is not None
    assert [k.to_user_string() for k in request.asset_selection] == [
        "ml/training_window", "ml/xgboost_candidate", "ml/xgboost_evaluation", "ml/xgboost_staging"]
    with connect(home.warehouse) as con:
        entry = retraining_log.history(con, limit=1)[0]
    assert entry.id == int(request.tags[LOG_ID_TAG]) and entry.kind == "drift" and entry.decision == "run"
    assert "no_vocabulary_drift failed" in entry.reason and entry.evidence == evidence

    # the same failure is answered once: the next tick, from the returned cursor, asks for nothing
    again = drift_retrain_sensor(sensor_context(world, cursor=context.cursor))
    assert isinstance(again, dg.SkipReason)


def test_performance_check_failure_requests_a_retrain_that_dedupe_refuses(world):
    home, instance, resources = world
    # a negative allowed drop makes any estimate a "drop": the check must fail, and say why
    config = {"ops": {"monitoring__model_performance": {"config": {"max_estimated_drop": -1.0, "min_n": 5}}}}
    result = monitor(world, model_performance, config)
    check = checks_of(result)["champion_performance"]
    assert not check.passed and "estimated F1" in check.description
    metadata = result.asset_materializations_for_node("monitoring__model_performance")[0].metadata
    assert metadata["champion"].value == "xgboost-v1"
    with connect(home.warehouse) as con:
        metrics = {r[0] for r in con.execute("SELECT DISTINCT metric FROM monitoring.model_performance "
                                             "WHERE model_version = 'xgboost-v1'").fetchall()}
        unattributed = con.execute("SELECT count(*) FROM monitoring.model_performance "
                                   "WHERE model_version = 'unattributed' AND metric = 'click_through'").fetchall()
    assert {"estimated_micro_f1", "estimated_macro_f1"} <= metrics
    assert unattributed[0][0] > 0  # the simulator's feedback carries no model version

    answer = performance_retrain_sensor(sensor_context(world))
    # the drift retrain accepted a moment ago has no run yet: one retrain at a time, so this one is refused
    assert isinstance(answer, dg.SkipReason) and "in flight" in answer.skip_message
    with connect(home.warehouse) as con:
        entry = retraining_log.history(con, limit=1)[0]
    assert entry.kind == "performance" and entry.decision == "skip" and "in flight" in entry.decision_reason

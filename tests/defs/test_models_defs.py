"""The model chain in Dagster: window -> candidate -> evaluation -> gates -> staging, on a small simulated world.

The tests share one world and one registry and run in order: a first XGBoost model becomes champion, a weak
transformer is held back by the gates, an unchanged window trains nothing, and new days give a stateful update.
"""

from datetime import UTC, date, datetime

import dagster as dg
import pytest
import torch
from dagster_dbt import DbtCliResource

from trending_assets.defs.dbt.assets import trending_dbt
from trending_assets.defs.dbt.resources import DBT_EXECUTABLE, dbt_project
from trending_assets.defs.ingest.assets import raw_assets
from trending_assets.defs.models.evaluation import (
    GATES,
    transformer_evaluation,
    transformer_gates,
    transformer_staging,
    xgboost_evaluation,
    xgboost_gates,
    xgboost_staging,
)
from trending_assets.defs.models.freshness import freshness_experiment
from trending_assets.defs.models.resources import WandbResource
from trending_assets.defs.models.training import transformer_candidate, xgboost_candidate
from trending_assets.defs.windows.assets import backtest_slice, static_test_set, training_window
from trending_assets.lib import gate_store, registry
from trending_assets.lib.simulator import simulate
from trending_assets.lib.warehouse import connect
from tests.unit.test_transformer_trainer import make_tiny_base

WINDOWS = [static_test_set, backtest_slice, training_window]
XGBOOST_CHAIN = [xgboost_candidate, xgboost_evaluation, xgboost_gates, xgboost_staging]
TRANSFORMER_CHAIN = [transformer_candidate, transformer_evaluation, transformer_gates, transformer_staging]
RANGE = "dagster/asset_partition_range_{}"
XGB_CONFIG = {"n_rounds": 30, "extra_rounds": 5, "nthread": 1, "n_hash_features": 4096}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Twelve simulated days ingested and built into windows: (home, instance, resources)."""
    from trending_assets.defs.warehouse.resources import WarehouseResource
    from trending_assets.lib.home import TrendingHome

    home = TrendingHome(tmp_path_factory.mktemp("models") / "home").ensure()
    resources = {"warehouse": WarehouseResource(home_dir=str(home.root)),
                 "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
                 "wandb": WandbResource(mode="disabled", directory=str(home.wandb))}
    instance = dg.DagsterInstance.ephemeral()
    ingest_and_build(home, instance, resources, date(2026, 1, 1), 12)
    return home, instance, resources


def ingest_and_build(home, instance, resources, start: date, days: int) -> None:
    simulate(home, start, days, seed=5, movies_per_day=50, users=20)
    end = date.fromordinal(start.toordinal() + days - 1)
    tags = {RANGE.format("start"): start.isoformat(), RANGE.format("end"): end.isoformat()}
    assert dg.materialize(raw_assets, resources=resources, instance=instance, tags=tags).success
    assert dg.materialize([trending_dbt, *WINDOWS], resources=resources, instance=instance).success


def run(chain, world, config: dict | None = None) -> dg.ExecuteInProcessResult:
    home, instance, resources = world
    family = chain[0].key.path[-1].removesuffix("_candidate")
    run_config = {"ops": {f"ml__{family}_candidate": {"config": config}}} if config else None
    return dg.materialize([*chain, *WINDOWS], selection=chain, resources=resources, instance=instance,
                          run_config=run_config, raise_on_error=False)


def query(home, sql: str, params=()) -> list[tuple]:
    with connect(home.warehouse) as con:
        return con.execute(sql, list(params)).fetchall()


def test_first_passing_model_becomes_champion_with_its_history_row(world):
    home = world[0]
    result = run(XGBOOST_CHAIN, world, XGB_CONFIG)
    assert result.success
    trained = result.asset_materializations_for_node("ml__xgboost_candidate")[0].metadata
    assert trained["version_id"].value == "xgboost-v1"
    assert trained["training_mode"].value == "stateless" and "no champion" in trained["reason"].value
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {"artifact_loads_and_predicts", "non_inferior_macro_f1", "no_genre_collapse"}
    assert all(c.passed for c in checks.values())
    assert "baseline:prevalence" in checks["non_inferior_macro_f1"].description

    with connect(home.warehouse) as con:
        version = registry.get(con, "xgboost-v1")
        history = registry.alias_history(con, "champion")
    assert version.stage == "production" and version.metrics["static_test_macro_f1"] > 0.5
    assert version.artifact_path.startswith(str(home.models))
    assert [(m.from_version, m.to_version, m.actor) for m in history] == [(None, "xgboost-v1", "asset:xgboost_staging")]
    assert "passed offline gates" in history[0].reason


def test_evaluation_is_long_sliced_and_reported(world):
    home = world[0]
    slices = {row[0] for row in query(home, "SELECT DISTINCT slice FROM ml.evaluations WHERE model_version = ?",
                                      ["xgboost-v1"])}
    assert slices == {"all", "genre", "release_decade", "source", "overview_length"}
    datasets = {row[0] for row in query(home, "SELECT DISTINCT dataset FROM ml.evaluations")}
    assert datasets == {"static_test", "backtest"}
    duplicates = query(home, "SELECT count(*) FROM (SELECT model_version, dataset, window_id, slice, slice_value, "
                             "metric FROM ml.evaluations GROUP BY ALL HAVING count(*) > 1)")
    assert duplicates == [(0,)]
    (diff, low, high), = query(home, "SELECT diff, ci_low, ci_high FROM ml.model_comparisons WHERE challenger = ? "
                                     "AND reference = 'baseline:prevalence' AND metric = 'macro_f1'", ["xgboost-v1"])
    assert low <= diff <= high and low > 0
    report = home.reports / "xgboost-v1"
    assert (report / "per_genre_f1.png").read_bytes().startswith(b"\x89PNG")
    assert "Paired bootstrap" in (report / "report.md").read_text()


def test_with_a_champion_uncertainty_sampling_uses_its_margins(world):
    _, instance, resources = world
    config = {"ops": {"ml__training_window": {"config": {"sampling": "uncertainty", "max_rows": 80}}}}
    result = dg.materialize(WINDOWS, selection=[training_window], resources=resources, instance=instance,
                            run_config=config)
    metadata = result.asset_materializations_for_node("ml__training_window")[0].metadata
    assert metadata["sampling"].value == "uncertainty" and metadata["dagster/row_count"].value == 80
    # back to the default window, so the tests after this one train on it
    assert dg.materialize(WINDOWS, selection=[training_window], resources=resources, instance=instance).success


def test_a_failing_gate_blocks_staging(world, tmp_path_factory):
    home = world[0]
    base = make_tiny_base(tmp_path_factory.mktemp("tiny-bert"), seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run(TRANSFORMER_CHAIN, world, {"base_model": str(base), "max_rows": 32, "max_length": 16,
                                                "epochs": 1, "batch_size": 16, "device": "cpu"})
    finally:
        torch.set_num_threads(threads)
    assert not result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["artifact_loads_and_predicts"].passed
    assert not checks["non_inferior_macro_f1"].passed and "xgboost-v1" in checks["non_inferior_macro_f1"].description
    assert result.asset_materializations_for_node("ml__transformer_staging") == []
    (stage,), = query(home, "SELECT stage FROM ml.model_versions WHERE version_id = 'transformer-v1'")
    assert stage == "candidate"
    verdicts = dict(query(home, "SELECT gate, passed FROM ml.gate_results WHERE version_id = 'transformer-v1'"))
    assert verdicts["non_inferior_macro_f1"] is False
    assert query(home, "SELECT version_id FROM ml.model_aliases WHERE alias = 'champion'") == [("xgboost-v1",)]


def test_staging_refuses_a_candidate_whose_gates_failed_even_when_run_alone(world):
    _, instance, resources = world
    result = dg.materialize([transformer_evaluation, transformer_staging], selection=[transformer_staging],
                            resources=resources, instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "transformer-v1 cannot go to staging" in failure.event_specific_data.error.message


def test_a_verdict_against_an_outdated_reference_does_not_stage(world):
    """Two first candidates judged against the baseline at once: the one that stages second holds back."""
    home, instance, resources = world
    with connect(home.warehouse) as con:
        gate_store.record(con, [gate_store.Verdict("transformer-v1", gate, True, "passed", "baseline:prevalence", {},
                                                   datetime.now(UTC).replace(tzinfo=None)) for gate in GATES])
    result = dg.materialize([transformer_evaluation, transformer_staging], selection=[transformer_staging],
                            resources=resources, instance=instance)
    assert result.asset_materializations_for_node("ml__transformer_staging") == []
    held = result.asset_observations_for_node("ml__transformer_staging")[0].metadata["held_back"].value
    assert "against baseline:prevalence, but the champion is now xgboost-v1" in held
    assert query(home, "SELECT stage FROM ml.model_versions WHERE version_id = 'transformer-v1'") == [("candidate",)]


def test_an_unchanged_window_trains_nothing(world):
    home = world[0]
    result = run(XGBOOST_CHAIN, world, XGB_CONFIG)
    assert result.success
    assert result.asset_materializations_for_node("ml__xgboost_candidate") == []
    assert query(home, "SELECT count(*) FROM ml.model_versions WHERE family = 'xgboost'") == [(1,)]


def test_new_days_give_a_stateful_update_that_continues_the_champion(world):
    home, instance, resources = world
    ingest_and_build(home, instance, resources, date(2026, 1, 13), 4)
    result = run(XGBOOST_CHAIN, world, XGB_CONFIG)
    assert result.success
    trained = result.asset_materializations_for_node("ml__xgboost_candidate")[0].metadata
    assert trained["version_id"].value == "xgboost-v2"
    assert trained["training_mode"].value == "stateful" and trained["parent_version"].value == "xgboost-v1"
    assert 0 < trained["new_rows_since_parent"].value < trained["rows_trained_on"].value + 1
    with connect(home.warehouse) as con:
        child, parent = registry.get(con, "xgboost-v2"), registry.get(con, "xgboost-v1")
        aliases = registry.list_aliases(con)
    assert child.metrics["n_rounds"] == parent.metrics["n_rounds"] + XGB_CONFIG["extra_rounds"]
    assert child.hyperparameters["policy"]["updates_since_stateless"] == 1
    assert child.stage == "staging" and aliases == {"champion": "xgboost-v1", "challenger": "xgboost-v2"}


def test_freshness_experiment_reports_every_bucket(world):
    home, instance, resources = world
    result = dg.materialize([freshness_experiment, *WINDOWS], selection=[freshness_experiment], resources=resources,
                            instance=instance, run_config={"ops": {"ml__freshness_experiment": {"config": {
                                "n_rounds": 10, "min_rows": 10}}}})
    assert result.success
    metadata = result.asset_materializations_for_node("ml__freshness_experiment")[0].metadata
    assert metadata["buckets"].value == 3
    assert "data:image/png;base64" in metadata["report"].value
    rows = query(home, "SELECT label, status, train_rows FROM ml.freshness_experiments ORDER BY age_days_mid")
    assert len(rows) == 3
    trained = {r[2] for r in rows if r[1] == "ok"}
    assert len(trained) == 1  # equal-sized windows: age is the only difference

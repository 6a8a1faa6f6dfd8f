"""dbt build and the curated windows, materialized in-process on a small simulated world.

The world is built once per module; the test that grows it runs last.
"""

from datetime import date

import dagster as dg
import duckdb
import polars as pl
import pytest
from dagster_dbt import DbtCliResource

from trending_assets.defs.dbt.assets import trending_dbt
from trending_assets.defs.dbt.resources import DBT_EXECUTABLE, dbt_project
from trending_assets.defs.ingest.assets import raw_assets
from trending_assets.defs.warehouse.assets import warehouse_snapshot
from trending_assets.defs.windows.assets import backtest_slice, static_test_set, training_window
from trending_assets.lib import windows
from trending_assets.lib.simulator import simulate

BUILD = [trending_dbt, static_test_set, backtest_slice, training_window, warehouse_snapshot]
RANGE = "dagster/asset_partition_range_{}"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from trending_assets.lib.home import TrendingHome

    return TrendingHome(tmp_path_factory.mktemp("build") / "home").ensure()


@pytest.fixture(scope="module")
def built(home):
    """Ten simulated days ingested and built once for the module; returns (instance, resources, result)."""
    from trending_assets.defs.warehouse.resources import WarehouseResource

    warehouse_resource = WarehouseResource(home_dir=str(home.root))
    simulate(home, date(2026, 1, 1), 10, seed=3, movies_per_day=40, users=30, noise=0.01)
    resources = {"warehouse": warehouse_resource,
                 "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)}
    instance = dg.DagsterInstance.ephemeral()
    ingest = dg.materialize(raw_assets, resources=resources, instance=instance,
                            tags={RANGE.format("start"): "2026-01-01", RANGE.format("end"): "2026-01-10"})
    assert ingest.success
    result = dg.materialize(BUILD, resources=resources, instance=instance)
    assert result.success
    return instance, resources, result


def test_dbt_tests_become_passing_asset_checks(built):
    _, _, result = built
    checks = result.get_asset_check_evaluations()
    by_name = {(c.asset_key.to_user_string(), c.check_name): c for c in checks}
    assert by_name[("marts/dim_movies", "unique_dim_movies_movie_id")].passed
    assert by_name[("marts/fct_feedback_events", "unique_fct_feedback_events_event_id")].passed
    assert any(name.startswith("accepted_values") for _, name in by_name)
    failing_errors = [k for k, c in by_name.items() if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
    assert failing_errors == []


def test_window_is_content_addressed_recorded_and_disjoint_from_the_test_set(built, home):
    _, _, result = built
    window_id = result.asset_materializations_for_node("ml__training_window")[0].metadata["window_id"].value
    with duckdb.connect(str(home.warehouse_snapshot), read_only=True) as con:
        recorded = con.execute(
            "SELECT kind, n_rows, path, source_partitions FROM ml.training_windows WHERE window_id = ?", [window_id]
        ).fetchall()
        test_ids = {r[0] for r in con.execute("SELECT movie_id FROM ml.static_test_set").fetchall()}
    (kind, n_rows, path, partitions), = recorded
    assert kind == "training" and path.endswith(f"{window_id}.parquet")
    rows = pl.read_parquet(path)
    assert rows.height == n_rows > 0
    assert windows.window_hash(rows) == window_id  # the name is the content
    assert not test_ids & set(rows["movie_id"])
    assert partitions and all(isinstance(d, date) for d in partitions)


def test_uncertainty_sampling_falls_back_and_says_so(built):
    instance, resources, _ = built
    config = dg.RunConfig({"ml__training_window": {"config": {
        "strategy": "recent_plus_sample", "days": 3, "older_fraction": 0.5, "sampling": "uncertainty"}}})
    result = dg.materialize([training_window], resources=resources, instance=instance, run_config=config,
                            selection=[training_window])
    metadata = result.asset_materializations_for_node("ml__training_window")[0].metadata
    assert metadata["sampling"].value == "stratified"
    assert any("no champion model" in note for note in metadata["notes"].value)


def test_static_test_set_stays_frozen_as_data_grows(built, home):
    instance, resources, first = built
    frozen = first.asset_materializations_for_node("ml__static_test_set")[0].metadata["window_id"].value
    simulate(home, date(2026, 1, 11), 3, seed=3, movies_per_day=40, users=30, noise=0.01)
    dg.materialize(raw_assets, resources=resources, instance=instance,
                   tags={RANGE.format("start"): "2026-01-11", RANGE.format("end"): "2026-01-13"})
    again = dg.materialize(BUILD, resources=resources, instance=instance)
    assert again.asset_materializations_for_node("ml__static_test_set")[0].metadata["window_id"].value == frozen
    assert again.asset_materializations_for_node("ml__backtest_slice")[0].metadata["end"].value == "2026-01-13"

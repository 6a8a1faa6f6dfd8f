"""Declarative automation: a raw partition landing rebuilds dbt, the evaluation datasets, the monitors and the
snapshot, exactly once; training is left to the retrain triggers (defs/retraining)."""

import dagster as dg
import pytest

from trending_assets.definitions import defs as load_defs


def _requested(result, defs) -> set[str]:
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    return {key.to_user_string() for key in keys if result.get_num_requested(key)}


def _tick(defs, instance, cursor):
    """One automation tick; every requested asset then materializes, as the runs would."""
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    requested = _requested(result, defs)
    for key in requested:
        instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey.from_user_string(key)))
    return result, requested


def test_raw_updates_rebuild_the_downstream_chain_once_in_dependency_order():
    defs = load_defs()
    instance = dg.DagsterInstance.ephemeral()

    idle, requested = _tick(defs, instance, None)
    # before any source data exists: the reference data (the genre taxonomy seed) and what depends only on it
    assert "staging/genre_taxonomy" in requested
    assert not any(key.startswith(("raw/", "ml/", "staging/stg_movies")) for key in requested)

    instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey(["raw", "movies"]), partition="2026-01-05"))
    result, requested = _tick(defs, instance, idle.cursor)
    # reviews have not landed: dim_movies must wait for stg_reviews rather than fail on a missing view
    assert "staging/stg_movies" in requested and "marts/dim_movies" not in requested

    for table in ("reviews", "feedback_events"):
        instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey(["raw", table]), partition="2026-01-05"))
    built: set[str] = set()
    for _ in range(6):  # each tick builds what became ready; the chain settles within a few ticks
        result, requested = _tick(defs, instance, result.cursor)
        built |= requested
        if not requested:
            break
    assert not requested, "the chain keeps rebuilding without new data"
    assert {"staging/stg_reviews", "staging/stg_feedback_events", "marts/dim_movies", "marts/fct_feedback_events",
            "ml/static_test_set", "ml/backtest_slice", "warehouse_snapshot", "ml/freshness_experiment",
            "monitoring/drift_report", "monitoring/model_performance"} <= built
    assert not any(key.startswith(("raw/", "landing/")) for key in built)
    # new data alone never trains: the window and the model chain run in retrain_job, when a trigger asks
    assert not any(key.startswith("ml/") and key.endswith(("_candidate", "_evaluation", "_staging", "training_window"))
                   for key in built)

    # a retrain that staged a model republishes the snapshot; the monitors wait for new data (re-running them on
    # every staged challenger would re-raise the same drift alarm, and ask for the same retrain, again)
    instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey(["ml", "xgboost_staging"])))
    _, requested = _tick(defs, instance, result.cursor)
    assert requested == {"warehouse_snapshot"}


def test_every_asset_is_described_grouped_and_kinded():
    graph = load_defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, f"{key.to_user_string()} has no description"
        assert node.group_name and node.group_name != "default", f"{key.to_user_string()} has no group"
        assert node.kinds, f"{key.to_user_string()} has no kinds"


def test_lineage_runs_from_landing_files_to_the_windows():
    graph = load_defs().resolve_asset_graph()
    upstream = graph.get(dg.AssetKey(["ml", "training_window"])).parent_keys
    chain = {dg.AssetKey(["marts", "dim_movies"])}
    assert chain <= upstream
    assert dg.AssetKey(["staging", "stg_movies"]) in graph.get(dg.AssetKey(["marts", "dim_movies"])).parent_keys
    assert dg.AssetKey(["raw", "movies"]) in graph.get(dg.AssetKey(["staging", "stg_movies"])).parent_keys
    assert dg.AssetKey(["landing", "movies"]) in graph.get(dg.AssetKey(["raw", "movies"])).parent_keys


def test_the_loops_outputs_carry_freshness_policies():
    graph = load_defs().resolve_asset_graph()
    windows = {key: graph.get(dg.AssetKey.from_user_string(key)).freshness_policy
               for key in ("ml/training_window", "monitoring/drift_report", "monitoring/model_performance")}
    assert windows["ml/training_window"].fail_window.to_timedelta().days == 8  # a weekly retrain missed
    assert windows["monitoring/drift_report"].fail_window.to_timedelta().days == 2
    assert windows["monitoring/model_performance"].warn_window.to_timedelta().days == 1


def test_runs_execute_in_process_unless_the_environment_asks_for_one_process_per_step():
    from trending_assets.defs.automation.execution import chosen_executor

    assert chosen_executor({}) is dg.in_process_executor
    multiprocess = chosen_executor({"TRENDING_EXECUTOR": "multiprocess"})
    assert multiprocess.name == "multiprocess"
    with pytest.raises(ValueError, match="TRENDING_EXECUTOR='threads' is not an executor; use one of in_process"):
        chosen_executor({"TRENDING_EXECUTOR": "threads"})

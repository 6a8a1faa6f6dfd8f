"""Declarative automation: a raw partition landing rebuilds dbt, the windows and the snapshot, exactly once."""

import dagster as dg

from trending_assets.definitions import defs as load_defs


def _requested(result, defs) -> set[str]:
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    return {key.to_user_string() for key in keys if result.get_num_requested(key)}


def test_raw_update_triggers_the_downstream_chain_once():
    defs = load_defs()
    instance = dg.DagsterInstance.ephemeral()

    idle = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    # before any source data exists only the reference data (the genre taxonomy seed) is built
    assert _requested(idle, defs) == {"staging/genre_taxonomy"}
    instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey(["staging", "genre_taxonomy"])))

    instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey(["raw", "movies"]), partition="2026-01-05"))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=idle.cursor)
    requested = _requested(result, defs)
    assert {"staging/stg_movies", "marts/dim_movies", "ml/training_window", "ml/static_test_set",
            "ml/backtest_slice", "warehouse_snapshot"} <= requested
    assert not any(key.startswith("raw/") or key.startswith("landing/") for key in requested)

    again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert again.total_requested == 0  # handled: no second build without a new update


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

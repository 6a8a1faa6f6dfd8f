"""The analysts' read path: a read-only snapshot of the warehouse, republished after every build."""

import dagster as dg

from trending_assets.defs.automation.conditions import on_upstream_update
from trending_assets.defs.warehouse.resources import WAREHOUSE_POOL, WarehouseResource
from trending_assets.lib import warehouse as warehouse_lib
from trending_assets.lib.genre_model import FAMILIES

UPSTREAM = [
    dg.AssetKey(["marts", name])
    for name in ("dim_movies", "fct_reviews", "fct_feedback_events", "agg_feedback_daily", "fct_genre_corrections")
] + [dg.AssetKey(["ml", name]) for name in ("training_window", "backtest_slice", "static_test_set")] + [
    # the registry and evaluations live in the same file: republish once models are evaluated and staged
    dg.AssetKey(["ml", f"{family}_{step}"]) for family in FAMILIES for step in ("evaluation", "staging")
] + [dg.AssetKey(["ml", "freshness_experiment"])] + [
    dg.AssetKey(["monitoring", name]) for name in ("drift_report", "model_performance")]
# the training window, models, experiments and monitors may not exist yet (no retrain yet, no candidate passed its
# gates): they must not hold the snapshot back
MAY_BE_MISSING = (dg.AssetSelection.groups("models", "evaluation", "monitoring")
                  | dg.AssetSelection.assets(dg.AssetKey(["ml", "training_window"])))


@dg.asset(
    deps=UPSTREAM,
    group_name="warehouse",
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
    automation_condition=on_upstream_update(may_be_missing=MAY_BE_MISSING),
    description="warehouse_snapshot.duckdb: a consistent copy analysts open read-only "
    "(`trending query`, `duckdb -readonly`) while the platform keeps writing the live file.",
)
def warehouse_snapshot(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    home = warehouse.home
    size = warehouse_lib.publish_snapshot(home.warehouse, home.warehouse_snapshot)
    context.log.info(f"published {home.warehouse_snapshot} ({size / 1e6:.1f} MB)")
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(home.warehouse_snapshot)), "size_mb": round(size / 1e6, 2)}
    )

"""The value-of-data-freshness experiment: models trained on equally large windows of different ages, all
scored on the newest movies (the backtest slice). How fast the score falls with age says how often retraining
pays off. Results go to ``ml.freshness_experiments`` and the UI (table, advice, plot)."""

from datetime import timedelta

import dagster as dg
import polars as pl

from trending_assets.defs.automation.execution import HEAVY
from trending_assets.defs.models.upstream import latest_metadata
from trending_assets.defs.warehouse.resources import WAREHOUSE_POOL, WarehouseResource
from trending_assets.lib import freshness, reports, window_store, windows
from trending_assets.lib.features import FeatureSpec
from trending_assets.lib.ingest import utc_now
from trending_assets.lib.xgb_trainer import XGBConfig

BACKTEST_SLICE = dg.AssetKey(["ml", "backtest_slice"])
DIM_MOVIES = dg.AssetKey(["marts", "dim_movies"])


def first_run() -> dg.AutomationCondition:
    """Once, as soon as its inputs exist, so a new deployment shows the experiment before the first Monday; not
    again after a failure (``on_missing()`` waits for the asset to *become* missing, which a never-built asset
    whose inputs arrive later never does)."""
    return (
        dg.AutomationCondition.missing()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & ~dg.AutomationCondition.execution_failed()
    ).with_label("first_run")


class FreshnessConfig(dg.Config):
    bucket_days: int = 30  # shrunk automatically when the history is shorter than n_buckets x bucket_days
    n_buckets: int = 3
    min_rows: int = 20  # a bucket with fewer labeled movies is reported as insufficient data
    n_rounds: int = 60  # XGBoost rounds per bucket model: the comparison needs equal recipes, not the best model
    seed: int = 0


@dg.asset(
    key=["ml", "freshness_experiment"], deps=[DIM_MOVIES, BACKTEST_SLICE], group_name="evaluation",
    kinds={"xgboost", "duckdb"}, pool=WAREHOUSE_POOL, op_tags=HEAVY,
    automation_condition=dg.AutomationCondition.on_cron("0 5 * * 1") | first_run(),
    description="Value of data freshness: XGBoost models trained on equally large windows 0-30, 30-60 and 60-90 "
    "days old, each scored on the newest movies (backtest slice); how often retraining pays off. Weekly.",
)
def freshness_experiment(context: dg.AssetExecutionContext, config: FreshnessConfig,
                         warehouse: WarehouseResource) -> dg.MaterializeResult:
    backtest = latest_metadata(context, BACKTEST_SLICE)
    eval_frame = pl.read_parquet(backtest["path"])
    eval_start = eval_frame["first_seen_date"].min() if eval_frame.height else utc_now().date() + timedelta(days=1)
    with warehouse.connect() as con:
        _, movies = windows.split_static_test(window_store.labeled_movies(con))  # never train on the test set
    buckets, notes = freshness.plan_buckets(movies, eval_start, config.bucket_days, config.n_buckets)
    recipe = XGBConfig(n_rounds=config.n_rounds, seed=config.seed, features=FeatureSpec())
    table = freshness.run_experiment(movies, eval_frame, buckets, recipe, seed=config.seed, min_rows=config.min_rows)
    advice = freshness.retrain_advice(table)
    run_at = utc_now()
    with warehouse.connect() as con:
        freshness.record(con, table, backtest["window_id"], run_at)
    png = reports.freshness_plot(table)
    plot = reports.write_png(png, warehouse.home.reports / "freshness" / f"{run_at:%Y%m%dT%H%M%S}.png")
    for note in notes:
        context.log.info(note)
    context.log.info(advice)
    markdown = "\n\n".join([f"**{advice}**", reports.markdown_table(table.drop("start", "end")),
                            *[f"_{note}_" for note in notes], reports.markdown_image(png, "macro F1 by data age")])
    return dg.MaterializeResult(metadata={
        "advice": advice,
        "eval_window_id": backtest["window_id"],
        "buckets": len(buckets),
        "report": dg.MetadataValue.md(markdown),
        "plot": dg.MetadataValue.path(str(plot)),
    })

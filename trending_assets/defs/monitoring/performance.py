"""``monitoring/model_performance``: online metrics per model version and day from the feedback marts, and the
champion's label-free F1 estimate, in ``monitoring.model_performance`` with a plot. Its check fails (ERROR) when
the champion's online F1 falls below a floor or its estimate drops too far, which ``performance_retrain_sensor``
turns into a retrain."""

from collections.abc import Iterator

import dagster as dg
import polars as pl

from trending_assets.defs.automation.conditions import on_upstream_update
from trending_assets.defs.automation.execution import HEAVY
from trending_assets.defs.automation.freshness import DAILY_MONITOR
from trending_assets.defs.models.upstream import latest_metadata
from trending_assets.defs.monitoring.config import PerformanceConfig
from trending_assets.defs.warehouse.resources import WAREHOUSE_POOL, WarehouseResource
from trending_assets.lib import genre_model, monitoring_store, performance, performance_report, registry, reports
from trending_assets.lib import training, window_store
from trending_assets.lib.ingest import utc_now

KEY = dg.AssetKey(["monitoring", "model_performance"])
CHECK = "champion_performance"
STATIC_TEST_SET = dg.AssetKey(["ml", "static_test_set"])
MARTS = [dg.AssetKey(["marts", name]) for name in ("dim_movies", "fct_feedback_events", "fct_genre_corrections")]
PLOTTED = ("online_micro_f1", "estimated_micro_f1", "thumbs_down_rate", "click_through")


@dg.asset(
    key=KEY, deps=[*MARTS, STATIC_TEST_SET], group_name="monitoring", kinds={"duckdb", "polars"},
    pool=WAREHOUSE_POOL, op_tags=HEAVY,
    automation_condition=on_upstream_update(),
    freshness_policy=DAILY_MONITOR,
    check_specs=[dg.AssetCheckSpec(CHECK, asset=KEY, description="fails (ERROR) when the champion's online F1 is "
                                   "below the floor or its estimated F1 dropped more than allowed")],
    description="Online F1 on users' genre corrections, thumbs-down rate and click-through per model version and "
    "day, plus the champion's CBPE-estimated F1 (calibrated on the static test set) for days without "
    "corrections. Rows in monitoring.model_performance.",
)
def model_performance(context: dg.AssetExecutionContext, config: PerformanceConfig,
                      warehouse: WarehouseResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    now = utc_now()
    with warehouse.connect() as con:
        latest = con.execute("SELECT max(first_seen_date) FROM marts.dim_movies").fetchall()[0][0]
        days = performance_report.recent_days(latest, config.days)
        since = days[0] if days else now.date()
        champion = training.champion(con)
        corrections = performance_report.corrections(con, since)
        feedback = performance_report.feedback(con, since)
        movies = window_store.labeled_movies(con)
        served = performance_report.served_by(corrections, champion.version_id if champion else None)
        versions = {v for v in served["model_version"].unique().to_list()}
        models = {v: genre_model.load_version(registry.get(con, v)) for v in sorted(versions)
                  if _registered(con, v)}
    rows = [performance.feedback_rates(feedback), performance_report.online_f1(served, movies, models)]
    alarm_inputs = None
    if champion is not None:
        model = models.get(champion.version_id) or genre_model.load_version(champion)
        static = pl.read_parquet(latest_metadata(context, STATIC_TEST_SET)["path"])
        calibrator = performance_report.calibrate(model, static)
        rows.append(performance_report.estimated_rows(champion.version_id, model, calibrator, movies, days))
        alarm_inputs = (model, calibrator, static)
    table = pl.concat(rows)
    with warehouse.connect() as con:
        written = monitoring_store.record_performance(con, table, now)
        history = monitoring_store.performance(con, since)
    png = reports.performance_plot(history.filter(pl.col("model_version") != performance_report.UNATTRIBUTED)
                                   if champion else history, PLOTTED, "Model performance from feedback")
    plot = reports.write_png(png, warehouse.home.reports / "performance" / f"{now:%Y%m%dT%H%M%S}.png")
    alarm = _alarm(config, champion, table, days, alarm_inputs)
    context.log.info(f"model performance: {written} rows for {len(days)} day(s); {alarm.summary}")
    latest_rows = table.filter(pl.col("metric").is_in(list(PLOTTED)) & (pl.col("day") == latest)) if days else table
    yield dg.MaterializeResult(metadata={
        "champion": champion.version_id if champion else "none",
        "days": f"{days[0]} .. {days[-1]}" if days else "none",
        "rows_written": written,
        "check_summary": alarm.summary,
        "latest_day": dg.MetadataValue.md(reports.markdown_table(latest_rows.sort("model_version", "metric"))),
        "report": dg.MetadataValue.md("\n\n".join([f"**{alarm.summary}**",
                                                  reports.markdown_image(png, "performance over days")])),
        "plot": dg.MetadataValue.path(str(plot)),
    })
    yield dg.AssetCheckResult(check_name=CHECK, asset_key=KEY, passed=alarm.passed,
                              severity=dg.AssetCheckSeverity.ERROR, description=alarm.summary,
                              metadata={k: v for k, v in alarm.metadata.items() if v is not None}
                              | {"champion": champion.version_id if champion else "none",
                                 "insufficient_data": alarm.insufficient_data})


def _registered(con, version_id: str) -> bool:
    try:
        registry.get(con, version_id)
        return True
    except registry.UnknownVersionError:
        return False  # feedback stamped with a version this registry never had: nothing to score


def _alarm(config: PerformanceConfig, champion, table: pl.DataFrame, days, inputs) -> performance.PerformanceAlarm:
    if champion is None or not days:
        return performance.PerformanceAlarm(True, True, "insufficient data: no champion to judge yet", {})
    model, calibrator, static = inputs
    recent = days[-config.recent_days:][0]
    online = performance_report.pooled(table, champion.version_id, "online_micro_f1", recent)
    estimated = performance_report.pooled(table, champion.version_id, "estimated_micro_f1", recent)
    reference = performance_report.estimate(model, calibrator, static)
    return performance.performance_alarm(
        online, config.f1_floor, estimated, performance.Score(reference.micro_f1, reference.n),
        config.max_estimated_drop, config.min_n)

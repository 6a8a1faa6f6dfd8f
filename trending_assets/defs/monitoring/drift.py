"""``monitoring/drift_report``: the champion's training window against the newest movies, every signal of
``lib/drift_report.py``, stored in ``monitoring.drift_reports`` and shown as tables and a PSI plot. Its checks
turn data, vocabulary and label drift into ERRORs, which ``drift_retrain_sensor`` turns into a retrain."""

from collections.abc import Iterator

import dagster as dg
import polars as pl

from trending_assets.defs.automation.conditions import on_upstream_update
from trending_assets.defs.automation.execution import HEAVY
from trending_assets.defs.automation.freshness import DAILY_MONITOR
from trending_assets.defs.monitoring.config import DriftConfig
from trending_assets.defs.warehouse.resources import WAREHOUSE_POOL, WarehouseResource
from trending_assets.lib import drift_report, genre_model, monitoring_store, registry, reports, training
from trending_assets.lib.drift_report import DriftReport
from trending_assets.lib.ingest import utc_now
from trending_assets.lib.performance_report import predicted_genres

KEY = dg.AssetKey(["monitoring", "drift_report"])
DIM_MOVIES = dg.AssetKey(["marts", "dim_movies"])
# signal -> (check name, severity): data, vocabulary and label drift ask for a retrain; the others warn
CHECKS = {
    "data": ("no_dataset_drift", dg.AssetCheckSeverity.ERROR),
    "vocabulary": ("no_vocabulary_drift", dg.AssetCheckSeverity.ERROR),
    "label": ("no_label_drift", dg.AssetCheckSeverity.ERROR),
    "prediction": ("no_prediction_drift", dg.AssetCheckSeverity.WARN),
    "embedding": ("no_embedding_drift", dg.AssetCheckSeverity.WARN),
}
RETRAIN_CHECKS = tuple(name for name, severity in CHECKS.values() if severity == dg.AssetCheckSeverity.ERROR)


@dg.asset(
    key=KEY, deps=[DIM_MOVIES], group_name="monitoring", kinds={"duckdb", "scipy"}, pool=WAREHOUSE_POOL,
    op_tags=HEAVY, automation_condition=on_upstream_update(),
    freshness_policy=DAILY_MONITOR,
    check_specs=[dg.AssetCheckSpec(name, asset=KEY, description=f"fails ({severity.value}) on {signal} drift")
                 for signal, (name, severity) in CHECKS.items()],
    description="Drift of the newest movies against the champion's training window: tabular features (KS / "
    "Wasserstein, chi-squared / Jensen-Shannon, PSI), text (domain classifier, new vocabulary, MiniLM embeddings), "
    "the champion's predictions and the label mix. Rows in monitoring.drift_reports.",
)
def drift_report_asset(context: dg.AssetExecutionContext, config: DriftConfig,
                       warehouse: WarehouseResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    created_at = utc_now()
    report_id = f"drift-{created_at:%Y%m%dT%H%M%S}-{context.run.run_id[:8]}"
    with warehouse.connect() as con:
        champion = training.champion(con)
        if champion is None:
            yield from _no_reference(context, "no champion yet, so no training window to compare with")
            return
        window = con.execute("SELECT window_id, start_date, end_date FROM ml.training_windows WHERE window_id = ? "
                             "AND kind = 'training'", [champion.window_id]).fetchall()
        movies = drift_report.first_scrapes(con)
        model = genre_model.load(champion.family, registry.load_artifact(champion))
    if not window:
        yield from _no_reference(context, f"champion {champion.version_id}'s window {champion.window_id} is not "
                                          "in ml.training_windows")
        return
    window_id, window_start, window_end = window[0]
    reference, current = drift_report.split(movies, window_start, window_end, config.current_days)
    embed = _embedder(context) if config.embedding else None
    report = drift_report.build(
        reference, current, share=config.share, min_rows=config.min_rows,
        predict=lambda frame: predicted_genres(model, frame), embed=embed,
        max_reference_rows=config.max_reference_rows, seed=config.seed,
    )
    with warehouse.connect() as con:
        written = monitoring_store.record_drift(
            con, report.long_rows(report_id), report_id=report_id, created_at=created_at,
            model_version=champion.version_id, reference_window_id=window_id,
            current_start=report.current_start, current_end=report.current_end)
    title = f"{champion.version_id}'s period vs {report.current_start} .. {report.current_end}"
    png = reports.drift_plot(report.features(), title)
    plot = reports.write_png(png, warehouse.home.reports / "drift" / f"{report_id}.png")
    verdict = "DRIFT" if report.drift_detected else "no drift"
    context.log.info(f"{report_id}: {verdict} ({report.reference_rows} reference vs {report.current_rows} current "
                     f"movies); {', '.join(f'{s}={report.drifted(s)}' for s in report.signals)}")
    yield dg.MaterializeResult(metadata={
        "report_id": report_id,
        "reference_period": f"{window_start or 'start'} .. {window_end}",
        "drift_detected": report.drift_detected,
        "champion": champion.version_id,
        "reference_window_id": window_id,
        "reference_rows": report.reference_rows,
        "current_rows": report.current_rows,
        "current_days": f"{report.current_start} .. {report.current_end}",
        "rows_written": written,
        "report": dg.MetadataValue.md(_markdown(report, png)),
        "plot": dg.MetadataValue.path(str(plot)),
    })
    for signal, (name, severity) in CHECKS.items():
        yield _check(report, signal, name, severity)


def _embedder(context: dg.AssetExecutionContext):
    from trending_assets.lib.text_drift import minilm_embedder

    try:
        return minilm_embedder()
    except (OSError, ImportError) as error:  # the bundled model package missing: report the rest
        context.log.warning(f"embedding drift skipped: the bundled MiniLM could not be loaded ({error})")
        return None


def _check(report: DriftReport, signal: str, name: str, severity: dg.AssetCheckSeverity) -> dg.AssetCheckResult:
    verdict = report.signals.get(signal)
    drifted = report.drifted(signal)
    if verdict is None:
        return dg.AssetCheckResult(check_name=name, asset_key=KEY, passed=True, severity=severity,
                                   description=f"{signal} drift not computed", metadata={"status": "not computed"})
    summary = report.summary().filter(pl.col("signal") == signal).row(0, named=True)
    metadata = {"status": "insufficient data" if drifted is None else "ok", "test": summary["test"],
                "value": summary["value"], "threshold": summary["threshold"], "detail": summary["detail"],
                "reference_rows": report.reference_rows, "current_rows": report.current_rows}
    metadata |= {f"psi:{row['feature']}": row["psi"] for row in
                 report.features().filter((pl.col("signal") == signal) & pl.col("psi").is_not_null()).to_dicts()}
    description = (f"{signal} drift: {summary['detail']}" if drifted else
                   f"{signal}: insufficient data ({summary['detail']})" if drifted is None else f"no {signal} drift")
    return dg.AssetCheckResult(check_name=name, asset_key=KEY, passed=not drifted, severity=severity,
                               description=description, metadata=metadata)


def _no_reference(context: dg.AssetExecutionContext, why: str) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    context.log.info(f"drift report: {why}")
    yield dg.MaterializeResult(metadata={"drift_detected": False, "status": why})
    for name, severity in CHECKS.values():
        yield dg.AssetCheckResult(check_name=name, asset_key=KEY, passed=True, severity=severity,
                                  description=f"insufficient data: {why}", metadata={"status": "no reference"})


def _markdown(report: DriftReport, png: bytes) -> str:
    parts = [f"**{'Drift detected' if report.drift_detected else 'No drift'}**: {report.reference_rows} reference "
             f"movies (first seen in the champion's training period, as first scraped) vs {report.current_rows} "
             "current movies.",
             reports.markdown_table(report.summary()), "Per feature:",
             reports.markdown_table(report.features()), *[f"_{note}_" for note in report.notes],
             reports.markdown_image(png, "PSI per feature")]
    return "\n\n".join(parts)

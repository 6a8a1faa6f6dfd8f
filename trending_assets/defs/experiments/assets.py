"""``experiments/rollout_analysis``: after every feedback update, the active rollout's current step is analysed
(shadow agreement, or the canary / A/B tests with guardrails and SRM) and a decision is proposed, which
``rollout_sensor`` applies. Its checks show guardrail breaches and sample ratio mismatches in the UI."""

from collections.abc import Iterator

import dagster as dg
import polars as pl

from trending_assets.defs.automation.conditions import on_upstream_update
from trending_assets.defs.experiments.resources import RolloutSettings
from trending_assets.defs.warehouse.resources import WAREHOUSE_POOL, WarehouseResource
from trending_assets.lib import experiment_analysis, experiment_store, reports, rollout_review
from trending_assets.lib.ingest import utc_now

KEY = dg.AssetKey(["experiments", "rollout_analysis"])
GUARDRAILS, SAMPLE_RATIO = "rollout_guardrails", "sample_ratio"
MARTS = [dg.AssetKey(["marts", name]) for name in ("fct_feedback_events", "dim_movies")]


@dg.asset(
    key=KEY, deps=MARTS, group_name="experiments", kinds={"duckdb", "polars", "scipy"}, pool=WAREHOUSE_POOL,
    automation_condition=on_upstream_update(),
    check_specs=[
        dg.AssetCheckSpec(GUARDRAILS, asset=KEY, description="fails when the challenger harms a guardrail "
                          "(thumbs down, corrections, errors: sequential test; latency p99; online F1)"),
        dg.AssetCheckSpec(SAMPLE_RATIO, asset=KEY, description="fails when the users' split differs from the "
                          "planned one (chi-squared p < 0.001): the experiment is invalid"),
    ],
    description="The active rollout's current step, analysed: shadow agreement and latency, or per-user metrics "
    "per arm with Welch / two-proportion tests, CUPED, mSPRT always-valid p-values, Holm, SRM, guardrails. "
    "Rows in experiments.results, experiments.srm and experiments.shadow_reports; the proposed decision is in "
    "the metadata for rollout_sensor.",
)
def rollout_analysis(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                     rollout_settings: RolloutSettings) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    with warehouse.connect() as con:
        experiment_store.ensure_schema(con)
        active = experiment_store.list_rollouts(con, active_only=True)
        review = rollout_review.review(con, active[-1], rollout_settings.policy()) if active else None
        history = rollout_review.primary_history(con, review.rollout.experiment_id) if review else None
    if review is None:
        yield dg.MaterializeResult(metadata={"status": "no active rollout"})
        for check in (GUARDRAILS, SAMPLE_RATIO):
            yield dg.AssetCheckResult(check_name=check, asset_key=KEY, passed=True,
                                      description="no active rollout", metadata={"insufficient_data": True})
        return
    summary = review.summary()
    context.log.info(f"{summary['experiment_id']} at {summary['phase']} {summary['percent']:g}%: "
                     f"{summary['action']} -> {summary['to_phase']} {summary['to_percent']:g}% ({summary['reason']})")
    png = reports.effect_plot(history, f"{review.rollout.challenger_version} vs {review.rollout.champion_version}: "
                                       f"{experiment_analysis.PRIMARY}")
    plot = reports.write_png(png, warehouse.home.reports / "experiments" / review.rollout.experiment_id /
                             f"{utc_now():%Y%m%dT%H%M%S}.png")
    yield dg.MaterializeResult(metadata={
        "experiment_id": summary["experiment_id"], "phase": summary["phase"], "percent": summary["percent"],
        "action": summary["action"], "decision_reason": summary["reason"],
        "decision": dg.MetadataValue.json(summary),
        "report": dg.MetadataValue.md(_report(review, png)), "plot": dg.MetadataValue.path(str(plot)),
    })
    analysis = review.analysis
    breaches = list(analysis.breaches) if analysis else []
    yield dg.AssetCheckResult(
        check_name=GUARDRAILS, asset_key=KEY, passed=not breaches, severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(breaches) or f"no guardrail harmed at {summary['phase']} {summary['percent']:g}%",
        metadata={"experiment_id": summary["experiment_id"], "breaches": len(breaches)})
    srm = analysis.srm if analysis else None
    yield dg.AssetCheckResult(
        check_name=SAMPLE_RATIO, asset_key=KEY, passed=srm is None or srm.ok, severity=dg.AssetCheckSeverity.ERROR,
        description=(f"users {list(srm.observed)} for planned shares {list(srm.expected_shares)}: chi-squared "
                     f"p={srm.p_value:.3g}" if srm else "shadow phase: no split to check"),
        metadata={"p_value": srm.p_value if srm else None, "experiment_id": summary["experiment_id"]})


def _report(review: rollout_review.Review, png: bytes) -> str:
    lines = [f"**{review.decision.action}**: {review.decision.reason}"]
    if review.shadow:
        s = review.shadow
        lines.append(f"Shadow {s['shadow_version']}: {s['requests']} requests, agreement {s['agreement']:.3f}, "
                     f"errors {s['error_rate']:.3f}, latency p50 {s['latency_p50_ms']:.2f} ms / p99 "
                     f"{s['latency_p99_ms']:.2f} ms")
    if review.analysis:
        a = review.analysis
        table = pl.DataFrame(experiment_analysis.as_rows(a)).select(
            "metric", "role", "method", "control_n", "treatment_n", "control_mean", "treatment_mean", "diff",
            "ci_low", "ci_high", "p_value", "p_adjusted", "sequential_p", "improved", "harmed")
        lines += [f"Users {a.users}, {a.days} day(s); SRM chi-squared p={a.srm.p_value:.3g} "
                  f"({'ok' if a.srm.ok else 'MISMATCH'})", reports.markdown_table(table, "{:.4f}"),
                  f"Latency ms: {a.latency}", f"Online F1 on corrected movies: {a.online_f1}"]
    if review.decision.power_plan:
        lines.append(f"Power analysis: {review.decision.power_plan}")
    lines.append(reports.markdown_image(png, "effect over analyses"))
    return "\n\n".join(lines)

"""``experiments/ab_test_analysis``: running A/B tests of a serving surface (e.g. vibe-tag prompt variants),
analysed after every feedback update; a significant winner (always-valid p), or the planned sample reached
without one, decides the test and takes it out of the plan."""

import json

import dagster as dg
import polars as pl

from trending_assets.defs.automation.conditions import on_upstream_update
from trending_assets.defs.warehouse.resources import WAREHOUSE_POOL, WarehouseResource
from trending_assets.lib import ab_tests, experiment_store, rollout
from trending_assets.lib.reports import markdown_table

KEY = dg.AssetKey(["experiments", "ab_test_analysis"])


@dg.asset(
    key=KEY, deps=[dg.AssetKey(["marts", "fct_feedback_events"])], group_name="experiments",
    kinds={"duckdb", "scipy"}, pool=WAREHOUSE_POOL, automation_condition=on_upstream_update(),
    description="Each running A/B test of a serving surface (experiments.ab_tests, e.g. vibe-tag prompts): per-user "
    "click-through per variant, Welch with CUPED and a two-proportion z-test, Holm, SRM, the mSPRT always-valid "
    "p-value; decides the test when a variant wins or the planned sample is reached. Rows in experiments.results.",
)
def ab_test_analysis(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    summaries = {}
    with warehouse.connect() as con:
        ab_tests.ensure_schema(con)
        experiment_store.ensure_schema(con)
        for test in ab_tests.running(con):
            result = ab_tests.analyse(test, ab_tests.user_metrics(con, test),
                                      experiment_store.load_pre_period(con, test.started_at))
            ab_tests.save(con, test, result)
            if result["winner"] is not None:
                ab_tests.finish(con, test.experiment_id, "decided", result["reason"])
                rollout.publish_plan(con, warehouse.home.deployment_plan)
            summaries[test.experiment_id] = result
            context.log.info(f"{test.experiment_id}: {result['users']} users; {result['reason']}")
    if not summaries:
        return dg.MaterializeResult(metadata={"status": "no running A/B test"})
    tables = [f"**{name}**: {r['reason']} (users {r['users']}, SRM p="
              f"{r['srm']['p_value'] if r['srm'] else float('nan'):.3g})\n\n"
              + (markdown_table(pl.DataFrame(r["rows"]).select(
                  "variant", "metric", "method", "control_n", "treatment_n", "control_mean", "treatment_mean",
                  "diff", "ci_low", "ci_high", "p_value", "p_adjusted", "sequential_p"), "{:.4f}") if r["rows"] else "")
              for name, r in summaries.items()]
    return dg.MaterializeResult(metadata={
        "tests": len(summaries), "report": dg.MetadataValue.md("\n\n".join(tables)),
        "verdicts": dg.MetadataValue.json(json.loads(json.dumps(
            {k: {"winner": v["winner"], "reason": v["reason"], "users": v["users"]} for k, v in summaries.items()}))),
    })

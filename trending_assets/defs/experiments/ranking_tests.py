"""``experiments/interleaving_analysis``: running interleaving tests of ``/trending`` rankers, analysed after every
feedback update; a significant preference, once enough users have one, decides the test and takes it out of the
plan."""

import dagster as dg
import polars as pl

from trending_assets.defs.automation.conditions import on_upstream_update
from trending_assets.defs.warehouse.resources import WAREHOUSE_POOL, WarehouseResource
from trending_assets.lib import ranking_tests, rollout
from trending_assets.lib.reports import markdown_table

KEY = dg.AssetKey(["experiments", "interleaving_analysis"])


@dg.asset(
    key=KEY, deps=[dg.AssetKey(["marts", "fct_feedback_events"])], group_name="experiments",
    kinds={"duckdb", "scipy"}, pool=WAREHOUSE_POOL, automation_condition=on_upstream_update(),
    description="Each running team-draft interleaving test of two /trending rankers (experiments.ranking_tests): "
    "clicks credited to the ranker that placed the movie, each user's preference, a sign test with a Wilson "
    "interval, its always-valid p-value (decides) and the users 80% power needs at the observed gap. Rows in experiments.interleaving_results.",
)
def interleaving_analysis(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    rows = []
    with warehouse.connect() as con:
        ranking_tests.ensure_schema(con)
        for test in ranking_tests.running(con):
            result = ranking_tests.analyse(test, ranking_tests.user_credits(con, test),
                                           ranking_tests.previous_sequential_p(con, test.experiment_id))
            ranking_tests.save(con, test, result)
            if result["decided"]:
                ranking_tests.finish(con, test.experiment_id, "decided", result["line"])
                rollout.publish_plan(con, warehouse.home.deployment_plan)
            context.log.info(f"{test.experiment_id}: {result['line']}; 80% power needs {result['required_users']} "
                             "users")
            v = result["verdict"]
            rows.append({"experiment": test.experiment_id, "A": test.ranker_a, "B": test.ranker_b, "users": v.users,
                         "prefer A": v.wins_a, "prefer B": v.wins_b, "ties": v.ties, "p": v.p_value,
                         "always-valid p": result["sequential_p"],
                         "needed": result["required_users"], "decided": result["decided"], "verdict": result["line"]})
    if not rows:
        return dg.MaterializeResult(metadata={"status": "no running interleaving test"})
    return dg.MaterializeResult(metadata={
        "tests": len(rows), "report": dg.MetadataValue.md(markdown_table(pl.DataFrame(rows), "{:.4g}")),
    })

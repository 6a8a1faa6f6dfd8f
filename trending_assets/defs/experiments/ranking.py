"""Experiments on the ``/trending`` rankers, analysed after every feedback update.

``experiments/interleaving_analysis``: running team-draft interleaving tests; a significant preference (always-valid
p-value), once enough users have one, decides the test and takes it out of the plan.
``experiments/ranking_bandit``: running bandits; new weights for the plan, and the off-policy gate per ranker.
"""

import dagster as dg
import polars as pl

from trending_assets.defs.automation.conditions import on_upstream_update
from trending_assets.defs.warehouse.resources import WAREHOUSE_POOL, WarehouseResource
from trending_assets.lib import ranking_bandits, ranking_tests, rollout
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


BANDIT_KEY = dg.AssetKey(["experiments", "ranking_bandit"])


@dg.asset(
    key=BANDIT_KEY, deps=[dg.AssetKey(["marts", "fct_feedback_events"])], group_name="experiments",
    kinds={"duckdb", "numpy"}, pool=WAREHOUSE_POOL, automation_condition=on_upstream_update(),
    description="Each running bandit over /trending rankers (experiments.ranking_bandits): its policy's state "
    "(Thompson sampling, UCB1 or epsilon-greedy) rebuilt from every logged decision and click, its next weights "
    "(floor and warm-up applied; the plan is republished when they move), the allocation audit (do users' arms "
    "follow the logged weights? a chi-square on each user's first exposure), and the off-policy value of always "
    "serving each ranker (SNIPS, doubly robust, intervals resampling users) against the logged policy: the OPE gate "
    "a ranker must pass to take all the traffic. Rows in experiments.bandit_results.",
)
def ranking_bandit(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    tables, verdicts = [], {}
    with warehouse.connect() as con:
        ranking_bandits.ensure_schema(con)
        moved = False
        for bandit in ranking_bandits.running(con):
            result = ranking_bandits.analyse(bandit, ranking_bandits.decisions(con, bandit))
            moved |= ranking_bandits.save(con, bandit, result)
            weights = ", ".join(f"{arm} {w:.0%}" for arm, w in zip(bandit.arms, result["weights"]))
            context.log.info(f"{bandit.experiment_id} ({bandit.policy}): next weights {weights}; OPE gate passed for: "
                             f"{'; '.join(result['passed']) or 'no ranker yet'}")
            allocation = result["allocation_srm"]
            _log_allocation(context, bandit.experiment_id, allocation)
            verdicts[bandit.experiment_id] = {"policy": bandit.policy, "weights": weights, "gate": result["passed"],
                                              "allocation": allocation}
            if result["rows"]:
                tables.append(f"**{bandit.experiment_id}** (logged value {result['logged_value']:.4f}; "
                              f"{allocation['line'] if allocation else 'no exposure logged its weights yet'})\n\n"
                              + markdown_table(pl.DataFrame(result["rows"]).drop("reason"), "{:.4f}"))
        if moved:
            rollout.publish_plan(con, warehouse.home.deployment_plan)
    if not verdicts:
        return dg.MaterializeResult(metadata={"status": "no running bandit"})
    mismatched = [id_ for id_, v in verdicts.items() if v["allocation"] and not v["allocation"]["ok"]]
    return dg.MaterializeResult(metadata={"bandits": len(verdicts), "report": dg.MetadataValue.md("\n\n".join(tables)),
                                          "allocation_mismatches": ", ".join(mismatched) or "none",
                                          "verdicts": dg.MetadataValue.json(verdicts)})


def _log_allocation(context: dg.AssetExecutionContext, experiment_id: str, allocation: dict | None) -> None:
    """The allocation audit in the run's log: a mismatch is a warning, since the OPE numbers beside it rest on the
    propensities it doubts."""
    if allocation is None:
        context.log.info(f"{experiment_id}: allocation audit waits for exposures that log their weights")
    elif allocation["ok"]:
        context.log.info(f"{experiment_id}: {allocation['line']}")
    else:
        context.log.warning(f"{experiment_id}: {allocation['line']}")

"""``ranker_candidate_sensor``: the automation for new /trending rankers. Every tick it settles the candidate under
test (its interleaving test decided, or its bandit's off-policy gate passed: promote it to production ranker, or
reject it) and starts the next proposed candidate's test against the production ranker (`trending ranker
propose`). When anything moved it publishes the deployment plan and launches ``deployment_job`` to record it."""

import dagster as dg
import duckdb

from trending_assets.defs.serving.assets import deployment_job
from trending_assets.defs.warehouse.resources import WarehouseResource
from trending_assets.lib import experiment_store, ranker_candidates, rollout
from trending_assets.lib.ingest import utc_now
from trending_assets.lib.warehouse import is_lock_error


@dg.sensor(name="ranker_candidate_sensor", job=deployment_job, minimum_interval_seconds=10,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Starts an interleaving test (or a bandit) of each proposed /trending ranker candidate against "
           "the production ranker, one at a time, and promotes or rejects the candidate when its test has an outcome "
           "(experiments.rankers); publishes the deployment plan whenever something moved.")
def ranker_candidate_sensor(context: dg.SensorEvaluationContext,
                            warehouse: WarehouseResource) -> dg.RunRequest | dg.SkipReason:
    try:
        with warehouse.connect(wait_s=5.0) as con:
            ranker_candidates.ensure_schema(con)
            moved = ranker_candidates.settle(con)
            started = ranker_candidates.start_next(con, experiment_store.watermark(con) or utc_now())
            if started is not None:
                moved.append(f"ranker {started.ranker}: {started.design} test {started.experiment_id} started against "
                             f"the production ranker ({started.allocation_percent:g}% of users)")
            plan = rollout.publish_plan(con, warehouse.home.deployment_plan) if moved else None
    except duckdb.IOException as error:
        if not is_lock_error(error):
            raise
        return dg.SkipReason("the warehouse is busy; trying again next tick")
    if not moved:
        return dg.SkipReason("no ranker candidate waiting, and no candidate's test has an outcome yet")
    for line in moved:
        context.log.info(line)
    return dg.RunRequest(run_key=f"ranker-{plan.plan_id if plan else 'none'}-{utc_now():%Y%m%dT%H%M%S}",
                         tags={"trending/ranker": "; ".join(moved)[:1000]})

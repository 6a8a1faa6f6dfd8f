"""``rollout_sensor``: the rollout's hands. Every tick it (1) carries out rollback requests left by the API's admin
endpoint, (2) rolls the champion back when its performance check fails after a promotion, (3) starts a rollout
(shadow) for a newly staged challenger, and (4) applies the decision of the newest ``experiments/rollout_analysis``
(ramp up, start the A/B test, validate and promote, reject, or roll back on a guardrail breach). Whatever moved,
it publishes the new deployment plan itself, so the API switches within one tick, and launches
``deployment_job`` so the plan's materialization records it."""

import json

import dagster as dg
import duckdb

from trending_assets.defs.experiments import assets as analysis_asset
from trending_assets.defs.experiments.resources import RolloutSettings
from trending_assets.defs.monitoring import performance as performance_monitor
from trending_assets.defs.serving.assets import deployment_job
from trending_assets.defs.warehouse.resources import WarehouseResource
from trending_assets.lib import rollout_control
from trending_assets.lib.warehouse import is_lock_error

ACTOR = "sensor:rollout_sensor"


@dg.sensor(name="rollout_sensor", job=deployment_job, minimum_interval_seconds=10,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Starts a rollout for each staged challenger, applies rollout_analysis's decisions (ramp, "
           "A/B, promote, reject, roll back), rolls back a promoted champion whose performance check fails, and "
           "carries out the API's rollback requests; publishes the deployment plan whenever something moved.")
def rollout_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource,
                   rollout_settings: RolloutSettings) -> dg.RunRequest | dg.SkipReason:
    cursor = json.loads(context.cursor) if context.cursor else {}
    records = context.instance.fetch_materializations(analysis_asset.KEY, limit=1).records
    analysis = records[0] if records else None
    proposal = None
    if analysis is not None and analysis.storage_id > cursor.get("analysis", 0):
        value = analysis.asset_materialization.metadata.get("decision")
        proposal = value.value if value is not None else None
    check = _latest_champion_check(context.instance, cursor.get("champion_check", 0))
    try:
        with warehouse.connect(wait_s=rollout_settings.lock_wait_s) as con:
            moved, plan = rollout_control.tick(con, warehouse.home, rollout_settings.policy(), ACTOR, proposal,
                                               champion_failure=check[1] if check else None)
    except duckdb.IOException as error:
        if not is_lock_error(error):
            raise
        return dg.SkipReason("the warehouse is busy; trying again next tick")
    cursor = {"analysis": analysis.storage_id if analysis else cursor.get("analysis", 0),
              "champion_check": check[0] if check else cursor.get("champion_check", 0)}
    context.update_cursor(json.dumps(cursor))
    if not moved:
        return dg.SkipReason("nothing to move: " + (proposal or {}).get("reason", "no new analysis"))
    for line in moved:
        context.log.info(line)
    return dg.RunRequest(run_key=f"plan-{plan.plan_id if plan else 'none'}-{context.cursor}",
                         tags={"trending/rollout": "; ".join(moved)[:1000]})


def _latest_champion_check(instance: dg.DagsterInstance, seen: int) -> tuple[int, str] | None:
    """(execution id, description) of a new failed champion_performance evaluation, if any."""
    key = dg.AssetCheckKey(performance_monitor.KEY, performance_monitor.CHECK)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key]).get(key)
    if record is None or record.id <= seen or record.status.value not in ("SUCCEEDED", "FAILED"):
        return None
    return record.id, (record.evaluation.description or "champion_performance failed") \
        if record.status.value == "FAILED" else None

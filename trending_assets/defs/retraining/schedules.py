"""``weekly_retrain_schedule``: retrain on a calendar, whatever the monitors say (cron from
``TRENDING_RETRAIN_CRON``, default Mondays 06:00 UTC), through the same rules as every other trigger."""

import os

import dagster as dg
import duckdb

from trending_assets.defs.retraining.jobs import retrain_job
from trending_assets.defs.retraining.requests import request
from trending_assets.defs.retraining.resources import RetrainPolicy
from trending_assets.defs.warehouse.resources import WarehouseResource
from trending_assets.lib.ingest import utc_now
from trending_assets.lib.retrain_triggers import SCHEDULE, Trigger
from trending_assets.lib.warehouse import is_lock_error

CRON = os.environ.get("TRENDING_RETRAIN_CRON", "0 6 * * 1")


@dg.schedule(
    name="weekly_retrain_schedule", cron_schedule=CRON, job=retrain_job, execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"Weekly retrain ({CRON} UTC; set TRENDING_RETRAIN_CRON to change it), subject to the shared "
    "dedupe and cooldown rules and recorded in ml.retraining_log.",
)
def weekly_retrain_schedule(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource,
                            retrain_policy: RetrainPolicy) -> dg.RunRequest | dg.SkipReason:
    due = context.scheduled_execution_time
    trigger = Trigger(SCHEDULE, f"weekly retrain due {due:%a %Y-%m-%d %H:%M} UTC ({CRON})", utc_now(),
                      "weekly_retrain_schedule", evidence={"cron": CRON, "scheduled_for": due.isoformat()})
    try:
        with warehouse.connect(wait_s=retrain_policy.lock_wait_s) as con:
            return request(trigger, con, context.instance, retrain_policy, context.log)
    except duckdb.IOException as error:
        if not is_lock_error(error):
            raise
        return dg.SkipReason("the warehouse is busy; this week's tick could not be recorded (see daemon log)")

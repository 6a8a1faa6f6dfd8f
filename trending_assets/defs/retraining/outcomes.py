"""How retrain runs end, written back to ``ml.retraining_log``, and the alert every real run failure raises.

A run that failed only because blocking gate checks did not pass is a candidate *held back* (the gates working),
not a broken run: it is logged as ``held back`` and raises no alert. Any other failure, of any job, lands an
``alert`` feedback event (``lib/alerts.py``); the champion is untouched either way, since only the staging step
moves aliases and it runs after the gates.
"""

import dagster as dg

from trending_assets.defs.retraining.jobs import retrain_job
from trending_assets.defs.retraining.requests import LOG_ID_TAG, REASON_TAG, TRIGGER_TAG
from trending_assets.defs.warehouse.resources import WarehouseResource
from trending_assets.lib import alerts, retraining_log
from trending_assets.lib.ingest import utc_now
from trending_assets.lib.retrain_triggers import MANUAL, Decision, Trigger

SUCCESS, HELD_BACK, FAILURE = "success", "held back", "failure"


def is_gate_failure(step_failure: dg.DagsterEvent) -> bool:
    """A step that failed only because a blocking asset check did not pass."""
    return step_failure.event_specific_data.error.cls_name == "DagsterAssetCheckFailedError"


def only_gates_failed(instance: dg.DagsterInstance, run_id: str) -> bool:
    """A run whose only failures are blocking gate checks: a candidate was held back, nothing broke."""
    failures = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    return bool(failures) and all(is_gate_failure(e.dagster_event) for e in failures)


def _entry_id(run: dg.DagsterRun, warehouse: WarehouseResource, log) -> int:
    """The log entry this run answers; a run launched straight from the UI is recorded now as a manual one."""
    if LOG_ID_TAG in run.tags:
        return int(run.tags[LOG_ID_TAG])
    with warehouse.connect() as con:
        known = retraining_log.entry_for_run(con, run.run_id)
    if known is not None:
        return known
    reason = run.tags.get(REASON_TAG) or "launched from the Dagster UI (add a trending/reason tag to say why)"
    trigger = Trigger(MANUAL, reason, utc_now(), run.tags.get("dagster/user", "a person in the Dagster UI"))
    with warehouse.connect() as con:
        entry = retraining_log.record(con, trigger, Decision(True, "launched directly, outside the trigger sensors"),
                                      run_id=run.run_id)
    log.info(f"recorded manual retrain run {run.run_id} as ml.retraining_log #{entry}")
    return entry


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.STARTED, name="retrain_started_sensor", monitored_jobs=[retrain_job],
    default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=5,
    description="Ties each started retrain_job run to its ml.retraining_log entry (and records UI launches).",
)
def retrain_started_sensor(context: dg.RunStatusSensorContext, warehouse: WarehouseResource):
    entry = _entry_id(context.dagster_run, warehouse, context.log)
    with warehouse.connect() as con:
        retraining_log.attach_run(con, entry, context.dagster_run.run_id)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS, name="retrain_succeeded_sensor", monitored_jobs=[retrain_job],
    default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=5,
    description="Marks a finished retrain_job run as a success in ml.retraining_log.",
)
def retrain_succeeded_sensor(context: dg.RunStatusSensorContext, warehouse: WarehouseResource):
    entry = _entry_id(context.dagster_run, warehouse, context.log)
    with warehouse.connect() as con:
        retraining_log.attach_run(con, entry, context.dagster_run.run_id, SUCCESS)


@dg.run_failure_sensor(
    name="run_failure_alert_sensor", default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=5,
    description="Any failed run lands an alert feedback event (event_type=alert); a retrain run's outcome goes to "
    "ml.retraining_log as 'held back' (only gates failed: no alert) or 'failure'.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, warehouse: WarehouseResource):
    run = context.dagster_run
    held_back = only_gates_failed(context.instance, run.run_id)
    if run.job_name == retrain_job.name:
        entry = _entry_id(run, warehouse, context.log)
        with warehouse.connect() as con:
            retraining_log.attach_run(con, entry, run.run_id, HELD_BACK if held_back else FAILURE)
    if held_back:
        context.log.info(f"run {run.run_id}: the offline gates held a candidate back; no alert")
        return
    message = context.failure_event.message or "run failed"
    event = alerts.alert_event(run.run_id, run.job_name, message, utc_now(),
                               {"trigger": run.tags.get(TRIGGER_TAG), "retrain_log_id": run.tags.get(LOG_ID_TAG)})
    path = alerts.write_alert(warehouse.home, event)
    context.log.warning(f"run {run.run_id} ({run.job_name}) failed; alert landed at {path}")

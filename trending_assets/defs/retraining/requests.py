"""One path for every retrain request: apply the shared rules, record the request in ``ml.retraining_log``, and
turn an accepted one into a ``retrain_job`` run request whose tags carry the trigger, reason and evidence.

A trigger event is answered exactly once: accepted (a run) or refused (in flight, cooldown), and either way one
log row says why, so the log explains every retrain and every retrain that did not happen.
"""

import json
from datetime import timedelta

import dagster as dg
import duckdb

from trending_assets.defs.retraining.jobs import retrain_selection
from trending_assets.defs.retraining.resources import RetrainPolicy
from trending_assets.lib import retraining_log
from trending_assets.lib.ingest import utc_now
from trending_assets.lib.retrain_triggers import Decision, Trigger, decide

JOB = "retrain_job"
STATIC_TEST_SET = dg.AssetKey(["ml", "static_test_set"])
TRIGGER_TAG, LOG_ID_TAG, REASON_TAG, EVIDENCE_TAG = (
    "trending/trigger", "trending/retrain_log_id", "trending/reason", "trending/evidence")
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]
# an accepted request whose run the daemon has not created yet still counts as in flight for this long
PENDING = timedelta(minutes=2)
TAG_LIMIT = 2000


def in_flight(instance: dg.DagsterInstance, con: duckdb.DuckDBPyConnection) -> str | None:
    """The retrain in flight: a queued or running ``retrain_job`` run, or an accepted request from the last
    two minutes that has no run yet; None when there is neither."""
    runs = instance.get_run_records(filters=dg.RunsFilter(job_name=JOB, statuses=IN_FLIGHT), limit=1)
    if runs:
        return runs[0].dagster_run.run_id
    for entry in retraining_log.history(con, limit=5):
        if entry.decision != retraining_log.RUN or utc_now() - entry.requested_at > PENDING:
            continue
        if not instance.get_run_records(filters=dg.RunsFilter(tags={LOG_ID_TAG: str(entry.id)}), limit=1):
            return f"(request #{entry.id}, not started yet)"
    return None


def not_ready(instance: dg.DagsterInstance) -> str | None:
    """Why a retrain could not be judged yet (no frozen static test set to evaluate on); None when it can."""
    event = instance.get_latest_materialization_event(STATIC_TEST_SET)
    frozen = event is not None and event.asset_materialization.metadata.get("frozen")
    if frozen is None or not frozen.value:
        return "the static test set is not frozen yet, so a candidate could not be evaluated; waiting for more data"
    return None


def settling(instance: dg.DagsterInstance) -> str | None:
    """Why a data-driven trigger should wait: a run other than a retrain is still writing the warehouse (new days
    loading, dbt building), so counts and checks would describe half a batch; None when everything has settled."""
    runs = instance.get_run_records(filters=dg.RunsFilter(statuses=IN_FLIGHT), limit=20)
    busy = [r.dagster_run for r in runs if r.dagster_run.job_name != JOB]
    if busy:
        return f"run {busy[0].run_id[:8]} is still updating the warehouse; deciding once it has settled"
    return None


def answer(trigger: Trigger, con: duckdb.DuckDBPyConnection, instance: dg.DagsterInstance,
           policy: RetrainPolicy) -> tuple[Decision, int]:
    """Decide on ``trigger`` (ready, dedupe, then cooldown) and record it; returns the decision and its log id."""
    unready = not_ready(instance)
    if unready:
        decision = Decision(False, unready)
    else:
        decision = decide(trigger, in_flight_run_id=in_flight(instance, con),
                          last_started_at=retraining_log.last_started_at(con), cooldown_hours=policy.cooldown_hours)
    return decision, retraining_log.record(con, trigger, decision)


def tags(trigger: Trigger, entry_id: int) -> dict[str, str]:
    evidence = json.dumps(trigger.evidence, sort_keys=True, default=str)
    if len(evidence) > TAG_LIMIT:  # the whole evidence is in ml.retraining_log; a tag holds a readable head
        evidence = evidence[:TAG_LIMIT - 20] + " ...(truncated)"
    return {TRIGGER_TAG: trigger.kind, LOG_ID_TAG: str(entry_id), REASON_TAG: trigger.reason[:TAG_LIMIT],
            EVIDENCE_TAG: evidence, "trending/actor": trigger.actor}


def run_request(trigger: Trigger, entry_id: int, policy: RetrainPolicy) -> dg.RunRequest:
    return dg.RunRequest(run_key=f"retrain-{entry_id}", job_name=JOB,
                         asset_selection=retrain_selection(policy.family_list()), tags=tags(trigger, entry_id))


def request(trigger: Trigger, con: duckdb.DuckDBPyConnection, instance: dg.DagsterInstance, policy: RetrainPolicy,
            log) -> dg.RunRequest | dg.SkipReason:
    """``answer`` the trigger; a run request when accepted, else a skip reason that says why."""
    decision, entry_id = answer(trigger, con, instance, policy)
    log.info(f"retraining_log #{entry_id}: {trigger.kind} trigger {'accepted' if decision.run else 'refused'}: "
             f"{decision.reason}")
    if decision.run:
        return run_request(trigger, entry_id, policy)
    return dg.SkipReason(f"{trigger.kind} trigger refused (ml.retraining_log #{entry_id}): {decision.reason}")

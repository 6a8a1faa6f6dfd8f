"""The automatic retrain triggers besides the schedule: new labeled data (volume), a failed drift check, a failed
performance check. Each answers its trigger through ``requests.request`` (dedupe, cooldown, ml.retraining_log)."""

import json
from collections.abc import Callable

import dagster as dg
import duckdb

from trending_assets.defs.monitoring import drift as drift_monitor
from trending_assets.defs.monitoring import performance as performance_monitor
from trending_assets.defs.retraining.jobs import retrain_job
from trending_assets.defs.retraining.requests import not_ready, request, settling
from trending_assets.defs.retraining.resources import RetrainPolicy
from trending_assets.defs.warehouse.resources import WarehouseResource
from trending_assets.lib import training
from trending_assets.lib.ingest import utc_now
from trending_assets.lib.retrain_triggers import DRIFT, PERFORMANCE, VOLUME, Trigger, volume_decision
from trending_assets.lib.warehouse import is_lock_error, table_exists

FAILED = "FAILED"
DONE = ("SUCCEEDED", FAILED)
# Labeled movies first loaded after the champion's window was built (all of them without a champion): movies the
# champion could not have seen. Counting by first-seen *date* instead would count the backtest days the window
# holds out, and ask for a retrain the moment the first champion is staged.
NEW_LABELED_SQL = """
    SELECT count(*) FROM marts.dim_movies
    JOIN (SELECT movie_id, min(loaded_at) AS first_loaded_at FROM raw.movies GROUP BY movie_id) USING (movie_id)
    WHERE is_labeled AND (CAST(? AS TIMESTAMP) IS NULL OR first_loaded_at > ?)
"""
Outcome = dg.RunRequest | dg.SkipReason


def _busy(error: duckdb.IOException) -> dg.SkipReason:
    if not is_lock_error(error):
        raise error
    return dg.SkipReason("the warehouse is busy (another process holds its write lock); trying again next tick")


@dg.sensor(
    name="volume_retrain_sensor", job=retrain_job, minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a retrain when at least min_new_labeled new labeled movies (RetrainPolicy, env "
    "TRENDING_RETRAIN_MIN_NEW) arrived since the champion's training window was built; the cursor remembers how "
    "many there were at the last request, so the same movies never ask twice.",
)
def volume_retrain_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource,
                          retrain_policy: RetrainPolicy) -> Outcome:
    state = json.loads(context.cursor) if context.cursor else {}
    unready = not_ready(context.instance) or settling(context.instance)
    if unready:
        return dg.SkipReason(unready)  # not a trigger yet: the movies still count once it is ready
    try:
        with warehouse.connect(wait_s=retrain_policy.lock_wait_s) as con:
            if not table_exists(con, "marts", "dim_movies"):
                return dg.SkipReason("marts.dim_movies is not built yet")
            champion = training.champion(con)
            window_built = _window_built_at(con, champion.window_id) if champion else None
            new = con.execute(NEW_LABELED_SQL, [window_built, window_built]).fetchall()[0][0]
            key = champion.version_id if champion else "none"
            asked_at = state.get("new_at_last_request", 0) if state.get("champion") == key else 0
            verdict = volume_decision(new - asked_at, retrain_policy.min_new_labeled, window_built)
            if not verdict.run:
                return dg.SkipReason(verdict.reason + (f" (since the last volume request at {asked_at})"
                                                       if asked_at else ""))
            reason = verdict.reason if not asked_at else (
                f"{new - asked_at} more new labeled movies since the last volume request ({new} since the "
                f"champion's window was built on {window_built:%Y-%m-%d %H:%M}), at least the "
                f"{retrain_policy.min_new_labeled} required")
            trigger = Trigger(VOLUME, reason, utc_now(), "volume_retrain_sensor", evidence={
                "new_labeled_movies": new, "since_last_request": new - asked_at, "min_new": retrain_policy.min_new_labeled,
                "champion": key, "champion_window_built_at": str(window_built) if window_built else None})
            result = request(trigger, con, context.instance, retrain_policy, context.log)
    except duckdb.IOException as error:
        return _busy(error)
    context.update_cursor(json.dumps({"champion": key, "new_at_last_request": new}))
    return result


def _window_built_at(con: duckdb.DuckDBPyConnection, window_id: str):
    rows = con.execute("SELECT created_at FROM ml.training_windows WHERE window_id = ? AND kind = 'training'",
                       [window_id]).fetchall()
    return rows[0][0] if rows else None


def check_sensor(name: str, kind: str, asset_key: dg.AssetKey, check_names: tuple[str, ...],
                 describe: Callable[[dict], str], description: str) -> dg.SensorDefinition:
    """A sensor that requests a retrain once per new failed evaluation of any of ``check_names`` (the cursor is
    the newest check execution it has seen); the checks' metadata is the evidence."""

    @dg.sensor(name=name, job=retrain_job, minimum_interval_seconds=15,
               default_status=dg.DefaultSensorStatus.RUNNING, description=description)
    def _sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource,
                retrain_policy: RetrainPolicy) -> Outcome:
        seen = int(context.cursor or 0)
        keys = [dg.AssetCheckKey(asset_key, check) for check in check_names]
        records = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
        # by status, not by .evaluation: a PLANNED record (the check's run has started) carries the planned event
        evaluated = [r for r in records.values() if r.status.value in DONE and r.id > seen]
        failed = {r.key.name: r.evaluation for r in evaluated if r.status.value == FAILED}
        newest = max([seen, *(r.id for r in evaluated)])
        if not failed:
            context.update_cursor(str(newest))
            return dg.SkipReason(f"no new failed evaluation of {', '.join(check_names)}")
        busy = settling(context.instance)
        if busy:
            return dg.SkipReason(busy)  # the cursor stays: this failure is answered once the batch has settled
        evidence = {check: {"description": e.description, **{k: v.value for k, v in e.metadata.items()}}
                    for check, e in sorted(failed.items())}
        trigger = Trigger(kind, describe(evidence), utc_now(), name, evidence=evidence)
        try:
            with warehouse.connect(wait_s=retrain_policy.lock_wait_s) as con:
                result = request(trigger, con, context.instance, retrain_policy, context.log)
        except duckdb.IOException as error:
            return _busy(error)  # the cursor stays: the same failure asks again next tick
        context.update_cursor(str(newest))
        return result

    return _sensor


def _drift_reason(evidence: dict) -> str:
    return "drift report: " + "; ".join(f"{check} failed ({e.get('description')})" for check, e in evidence.items())


def _performance_reason(evidence: dict) -> str:
    return "; ".join(f"{check} failed: {e.get('description')}" for check, e in evidence.items())


drift_retrain_sensor = check_sensor(
    "drift_retrain_sensor", DRIFT, drift_monitor.KEY, drift_monitor.RETRAIN_CHECKS, _drift_reason,
    "Requests a retrain when monitoring/drift_report's ERROR checks (dataset, vocabulary or label drift) fail; "
    "the evidence is the checks' numbers (share drifted, PSI, significant words).",
)
performance_retrain_sensor = check_sensor(
    "performance_retrain_sensor", PERFORMANCE, performance_monitor.KEY, (performance_monitor.CHECK,),
    _performance_reason,
    "Requests a retrain when monitoring/model_performance's check fails (online F1 below the floor, or the "
    "estimated F1 dropped too far); the evidence is the F1 values and the floor.",
)

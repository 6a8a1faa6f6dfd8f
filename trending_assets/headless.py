"""Running the graph without the UI: `trending materialize` in-process, and the daemon-driven demo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from trending_assets.defs.ingest.sensors import RAW_KEYS as INGESTED
from trending_assets.defs.retraining import requests
from trending_assets.defs.retraining.outcomes import FAILURE, HELD_BACK, SUCCESS, is_gate_failure, only_gates_failed
from trending_assets.defs.retraining.requests import IN_FLIGHT, JOB, LOG_ID_TAG
from trending_assets.defs.retraining.resources import RetrainPolicy
from trending_assets.defs.warehouse.assets import UPSTREAM as SNAPSHOT_SOURCES
from trending_assets.defs.warehouse.resources import WarehouseResource
from trending_assets.lib import alerts, retraining_log
from trending_assets.lib.home import REPO_ROOT, TrendingHome
from trending_assets.lib.ingest import utc_now
from trending_assets.lib.retrain_triggers import MANUAL, Trigger

RAW_KEYS = list(INGESTED.values())
# No run started or ended for this long and none in flight: nothing is left to do (the automation sensor ticks
# every 10 s, the retrain sensors every 15 s).
QUIET_S = 25.0
# in-process runs log to the console at WARNING: the run's full log is in the instance (`make dev`)
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def load_definitions() -> dg.Definitions:
    from trending_assets.definitions import defs

    return defs()


def days_between(start: date, end: date) -> list[str]:
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}; give an end on or after the start")
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def _selection(select: str, graph) -> set[dg.AssetKey]:
    try:
        keys = dg.AssetSelection.from_string(select).resolve(graph)
    except Exception as error:  # Dagster raises several types for a bad selection string
        raise ValueError(f"--select {select!r} is not an asset selection ({error}); "
                         "try 'group:ingest', 'key:raw/movies' or 'key:\"raw/movies\"+'") from None
    if not keys:
        raise ValueError(f"--select {select!r} matches no asset; `make dev` lists them under Lineage")
    return keys


def materialize_range(start: date, end: date, select: str | None, echo: Callable[[str], None] = print) -> None:
    """Ingest each day in [start, end] then build everything downstream, as runs on the persistent instance."""
    defs = load_definitions()
    graph = defs.resolve_asset_graph()
    wanted = _selection(select, graph) if select else None
    instance = dg.DagsterInstance.get()
    for job_name, groups, partitioned in (
        ("ingest_job", ("ingest",), True),
        ("build_job", ("staging", "marts", "windows", "warehouse"), False),
        ("train_job", ("models", "evaluation"), False),
        # again, so analysts see the registry and evaluations (a gate that fails skips everything downstream of
        # the evaluation in train_job's own run, the snapshot included) and the API gets the champion's plan
        ("build_job", ("serving", "warehouse"), False),
    ):
        keys = dg.AssetSelection.groups(*groups).resolve(graph)
        if wanted is not None:
            keys &= wanted
        if not keys:
            continue
        job = defs.resolve_job_def(job_name)
        tags = {"trending/trigger": "cli"}
        if partitioned:  # one run for the whole range; the raw assets load each day in its own transaction
            days = days_between(start, end)
            tags |= {ASSET_PARTITION_RANGE_START_TAG: days[0], ASSET_PARTITION_RANGE_END_TAG: days[-1]}
        result = job.execute_in_process(
            instance=instance, asset_selection=sorted(keys), tags=tags, raise_on_error=False
        )
        label = job_name + (f" [{start} .. {end}]" if partitioned else "")
        held_back = gate_failures(result)
        if not result.success and held_back is not None:
            echo(f"{label}: ok, but the offline gates held back: {', '.join(held_back)} (run {result.run_id[:8]}; "
                 "ml.gate_results says why)")
            continue
        echo(f"{label}: {'ok' if result.success else 'FAILED'} (run {result.run_id[:8]})")
        if not result.success:
            raise SystemExit(f"{label} failed; open `make dev` and look at run {result.run_id}")


def gate_failures(result: dg.ExecuteInProcessResult) -> list[str] | None:
    """The failed blocking checks when they are the run's only failures (a rejected candidate is the gates
    working, not the run breaking); None when anything else failed."""
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    if not failures or not all(map(is_gate_failure, failures)):
        return None
    checks = [e.asset_check_evaluation_data for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    return sorted(f"{c.asset_key.to_user_string()}:{c.check_name}" for c in checks if not c.passed)


def start_daemon(home: TrendingHome) -> subprocess.Popen:
    """Start dagster-daemon in its own process group so it (and its run workers) can be stopped together."""
    log = open(home.dagster_home / "daemon.log", "ab")
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(),
        start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def stop_daemon(process: subprocess.Popen, grace_s: float = 20.0) -> None:
    """Interrupt the daemon's process group, wait for it, then kill whatever of the group is left."""
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)  # run workers the daemon launched share its group
    except ProcessLookupError:
        pass
    process.wait()


def progress(instance: dg.DagsterInstance, partitions: list[str], feedback_days: list[str] = ()) -> dict[str, object]:
    """How far the automation got: raw partitions loaded, whether the snapshot is newer than everything it copies,
    runs in flight, how long since the newest run was created, and failed runs (gate hold-backs apart)."""
    loaded = sum(
        len(instance.get_materialized_partitions(key) & set(partitions)) for key in RAW_KEYS
    ) + len(instance.get_materialized_partitions(INGESTED["feedback"]) & set(feedback_days))
    last_raw = max((_timestamp(instance, key) for key in RAW_KEYS), default=0.0)
    snapshot = _timestamp(instance, dg.AssetKey("warehouse_snapshot"))
    built = [_timestamp(instance, key) for key in SNAPSHOT_SOURCES]
    # quiet since the newest run was created or the last one ended: sensors that wait for the warehouse to
    # settle only act once nothing runs, so the quiet time must start when the last run ends
    records = instance.get_run_records(limit=10)
    last = max((max(r.create_timestamp.timestamp(), r.end_time or 0.0) for r in records), default=None)
    quiet_s = time.time() - last if last is not None else 0.0
    in_flight = len(instance.get_run_records(filters=dg.RunsFilter(statuses=IN_FLIGHT)))
    failed = instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    held_back = [r for r in failed if only_gates_failed(instance, r.dagster_run.run_id)]
    return {
        "raw_partitions": loaded,
        "expected": len(partitions) * len(RAW_KEYS) + len(set(feedback_days)),
        "snapshot_current": snapshot > max(last_raw, *built) > 0,
        "in_flight": in_flight,
        "quiet_s": quiet_s,
        "runs": len(instance.get_run_records()),
        "failed_runs": len(failed) - len(held_back),
        "held_back_runs": len(held_back),
    }


def _timestamp(instance: dg.DagsterInstance, key: dg.AssetKey) -> float:
    event = instance.get_latest_materialization_event(key)
    return event.timestamp if event else 0.0


def wait_for_automation(
    partitions: list[str], timeout_s: float, daemon: subprocess.Popen, echo: Callable[[str], None] = print,
    feedback_days: list[str] = (),
) -> dict:
    """Poll the instance until ingestion, dbt, monitoring, any retrain the triggers asked for and the snapshot have
    caught up with the landing, and nothing has been started for ``QUIET_S`` seconds. ``feedback_days``: days
    where only feedback landed (API traffic without a world day)."""
    instance = dg.DagsterInstance.get()
    deadline = time.monotonic() + timeout_s
    last_line = ""
    while True:
        state = progress(instance, partitions, feedback_days)
        line = (f"raw partitions {state['raw_partitions']}/{state['expected']}, snapshot current: "
                f"{state['snapshot_current']}, runs {state['runs']} (in flight {state['in_flight']}, failed "
                f"{state['failed_runs']}, held back by gates {state['held_back_runs']})")
        if line != last_line:
            echo(f"  {line}")
            last_line = line
        done = (state["raw_partitions"] == state["expected"] and state["snapshot_current"]
                and state["in_flight"] == 0 and state["quiet_s"] > QUIET_S)
        if done or state["failed_runs"]:
            return state
        if daemon.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited with code {daemon.returncode}; "
                               f"see {instance.root_directory}/daemon.log")
        if time.monotonic() > deadline:
            raise TimeoutError(f"automation did not finish within {timeout_s:.0f}s ({line}); "
                               f"see {instance.root_directory}/daemon.log and `make dev`")
        time.sleep(2)


def execute_retrain(defs: dg.Definitions, instance: dg.DagsterInstance, run_request: dg.RunRequest) -> tuple[str, str]:
    """Run a retrain request in this process (run id, outcome), and note the outcome in ml.retraining_log; the
    daemon's run-status sensors, when one runs, write the same values."""
    job = defs.resolve_job_def(JOB)
    result = job.execute_in_process(instance=instance, asset_selection=list(run_request.asset_selection or []),
                                    tags=dict(run_request.tags), raise_on_error=False, run_config=QUIET)
    outcome = SUCCESS if result.success else HELD_BACK if gate_failures(result) is not None else FAILURE
    with WarehouseResource().connect() as con:
        retraining_log.attach_run(con, int(run_request.tags[LOG_ID_TAG]), result.run_id, outcome)
    if outcome == FAILURE:
        event = alerts.alert_event(result.run_id, JOB, "retrain run failed", utc_now(),
                                   {"retrain_log_id": run_request.tags[LOG_ID_TAG]})
        alerts.write_alert(WarehouseResource().home, event)
    return result.run_id, outcome


def retrain(reason: str, echo: Callable[[str], None] = print) -> str:
    """``trending retrain --reason``: a manual trigger through the shared rules (cooldown bypassed, dedupe not),
    then the retrain run in this process. Returns the outcome; RuntimeError when refused."""
    import getpass

    trigger = Trigger(MANUAL, reason, utc_now(), f"cli:{getpass.getuser()}")
    defs = load_definitions()
    instance = dg.DagsterInstance.get()
    policy = RetrainPolicy()
    with WarehouseResource().connect() as con:
        decision, entry = requests.answer(trigger, con, instance, policy)
    if not decision.run:
        raise RuntimeError(f"retrain refused: {decision.reason} (ml.retraining_log #{entry}); try again once it ends")
    echo(f"retrain accepted (ml.retraining_log #{entry}): {decision.reason}")
    run_id, outcome = execute_retrain(defs, instance, requests.run_request(trigger, entry, policy))
    echo(f"retrain_job run {run_id[:8]}: {outcome}")
    return outcome


def tick_schedule(defs: dg.Definitions, instance: dg.DagsterInstance, due: datetime) -> dg.RunRequest | dg.SkipReason:
    """Evaluate ``weekly_retrain_schedule`` as if its cron had fired at ``due``: the demo's world runs weeks in
    minutes, so it ticks the real schedule code at each simulated week's end instead of waiting for Monday."""
    schedule = defs.resolve_schedule_def("weekly_retrain_schedule")
    resources = {"warehouse": WarehouseResource(), "retrain_policy": RetrainPolicy()}
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=due, resources=resources) as context:
        data = schedule.evaluate_tick(context)
    if data.run_requests:
        return data.run_requests[0]
    return dg.SkipReason(data.skip_message or "the schedule asked for nothing")

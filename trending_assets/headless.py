"""Running the graph without the UI: `trending materialize` in-process, and the daemon-driven demo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from trending_assets.defs.ingest.sensors import RAW_KEYS as INGESTED
from trending_assets.lib.genre_model import FAMILIES
from trending_assets.lib.home import REPO_ROOT, TrendingHome

RAW_KEYS = list(INGESTED.values())
# No new run for this long (the automation sensor ticks every 10 s) and none in flight: nothing is left to do.
QUIET_S = 30.0
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]


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
        # again, so analysts see the registry and evaluations: a gate that fails skips everything downstream of
        # the evaluation in train_job's own run, the snapshot included
        ("build_job", ("warehouse",), False),
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
    if not failures or not all(map(_is_gate_failure, failures)):
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


def progress(instance: dg.DagsterInstance, partitions: list[str]) -> dict[str, object]:
    """How far the automation got: raw partitions loaded, downstream built since, runs in flight, and how long
    since the newest run was created (a window with nothing new trains no candidate, so "quiet" is the end,
    not "a candidate per window")."""
    loaded = sum(
        len(instance.get_materialized_partitions(key) & set(partitions)) for key in RAW_KEYS
    )
    last_raw = max((_timestamp(instance, key) for key in RAW_KEYS), default=0.0)
    snapshot = _timestamp(instance, dg.AssetKey("warehouse_snapshot"))
    window = _timestamp(instance, dg.AssetKey(["ml", "training_window"]))
    models = [_timestamp(instance, dg.AssetKey(["ml", f"{family}_{step}"]))
              for family in FAMILIES for step in ("evaluation", "staging")]
    evaluated = models[::2]
    records = instance.get_run_records(limit=1)
    quiet_s = time.time() - records[0].create_timestamp.timestamp() if records else 0.0
    in_flight = len(instance.get_run_records(filters=dg.RunsFilter(statuses=IN_FLIGHT)))
    failed = instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    held_back = [r for r in failed if _only_gates_failed(instance, r.dagster_run.run_id)]
    return {
        "raw_partitions": loaded,
        "expected": len(partitions) * len(RAW_KEYS),
        "window_built": window > last_raw > 0,
        "models_evaluated": sum(t > 0 for t in evaluated),
        "snapshot_current": snapshot > max(last_raw, window, *models) > 0,
        "in_flight": in_flight,
        "quiet_s": quiet_s,
        "failed_runs": len(failed) - len(held_back),
        "held_back_runs": len(held_back),
    }


def _only_gates_failed(instance: dg.DagsterInstance, run_id: str) -> bool:
    """A run whose only failures are blocking gate checks: a candidate was held back, nothing broke."""
    failures = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    return bool(failures) and all(_is_gate_failure(e.dagster_event) for e in failures)


def _is_gate_failure(step_failure: dg.DagsterEvent) -> bool:
    """A step that failed only because a blocking asset check did not pass."""
    return step_failure.event_specific_data.error.cls_name == "DagsterAssetCheckFailedError"


def _timestamp(instance: dg.DagsterInstance, key: dg.AssetKey) -> float:
    event = instance.get_latest_materialization_event(key)
    return event.timestamp if event else 0.0


def wait_for_automation(
    partitions: list[str], timeout_s: float, daemon: subprocess.Popen, echo: Callable[[str], None] = print
) -> dict:
    """Poll the instance until ingestion, dbt, the window and the snapshot have caught up with the landing."""
    instance = dg.DagsterInstance.get()
    deadline = time.monotonic() + timeout_s
    last_line = ""
    while True:
        state = progress(instance, partitions)
        line = (f"raw partitions {state['raw_partitions']}/{state['expected']}, window built: "
                f"{state['window_built']}, model families evaluated: {state['models_evaluated']}/{len(FAMILIES)}, "
                f"snapshot current: "
                f"{state['snapshot_current']}, runs in flight: {state['in_flight']}, failed: {state['failed_runs']}, "
                f"held back by gates: {state['held_back_runs']}")
        if line != last_line:
            echo(f"  {line}")
            last_line = line
        # not "models evaluated": a window too small to train on never gets a candidate, and that is an answer too
        done = (state["raw_partitions"] == state["expected"] and state["window_built"]
                and state["snapshot_current"] and state["in_flight"] == 0 and state["quiet_s"] > QUIET_S)
        if done or state["failed_runs"]:
            return state
        if daemon.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited with code {daemon.returncode}; "
                               f"see {instance.root_directory}/daemon.log")
        if time.monotonic() > deadline:
            raise TimeoutError(f"automation did not finish within {timeout_s:.0f}s ({line}); "
                               f"see {instance.root_directory}/daemon.log and `make dev`")
        time.sleep(2)

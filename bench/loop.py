"""From landing a drifted batch to a registered, gate-passed challenger, with the real dagster-daemon (XGBoost).

    .venv/bin/python bench/loop.py                 # 14 stable days to bootstrap, then 2 drifted days, timed

Setup (not timed): a fresh TRENDING_HOME; 14 days of a ``vocabulary_drift`` world whose drift starts the next
day land, and the daemon's volume trigger trains the first champion. The daemon is then restarted with the volume
trigger out of reach, so only the monitors can ask for the next retrain.

Timed: the next two (drifted) days land at t0. The landing sensor ingests them, dbt builds, the drift report runs
and fails its vocabulary check, ``drift_retrain_sensor`` requests ``retrain_job``, which builds a window, trains
XGBoost (stateful), evaluates, runs the gates and stages the candidate as ``challenger``. t1 is when the
challenger alias points at the new version. Every run in between is printed with its queue and run time, so the
sensor intervals and queueing are visible. Target: t1 - t0 <= 120 s on the 2-core reference machine.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

TARGET_S = 120.0
BOOTSTRAP_DAYS, DRIFTED_DAYS = 14, 2


def main() -> int:
    home_dir = Path(tempfile.mkdtemp(prefix="bench-loop-"))
    os.environ.update({"TRENDING_HOME": str(home_dir), "DAGSTER_HOME": str(home_dir / "dagster"),
                       "TRENDING_RETRAIN_FAMILIES": "xgboost", "TRENDING_RETRAIN_COOLDOWN_HOURS": "0",
                       "TRENDING_RETRAIN_MIN_NEW": "300", "WANDB_MODE": "disabled"})
    import dagster as dg

    from trending_assets import environment, headless
    from trending_assets.lib import warehouse
    from trending_assets.lib.simulator import simulate

    home = environment.configure()
    start = datetime.now(UTC).date() - timedelta(days=BOOTSTRAP_DAYS + DRIFTED_DAYS)
    drift_start = start + timedelta(days=BOOTSTRAP_DAYS)
    print(describe())
    print(f"home {home.root}; bootstrap {start} .. {drift_start - timedelta(days=1)}, drift from {drift_start}")

    simulate(home, start, BOOTSTRAP_DAYS, scenario="vocabulary_drift", drift_start=drift_start)
    daemon = headless.start_daemon(home)
    try:
        headless.wait_for_automation(headless.days_between(start, drift_start - timedelta(days=1)), 1200, daemon,
                                     echo=lambda line: None)
    finally:
        headless.stop_daemon(daemon)
    with warehouse.connect(home.warehouse) as con:
        champion = con.execute("SELECT version_id FROM ml.model_aliases WHERE alias = 'champion'").fetchall()
    if not champion:
        print("bootstrap trained no champion; see the daemon log under", home.dagster_home)
        return 1
    print(f"bootstrap done: champion {champion[0][0]}")

    os.environ["TRENDING_RETRAIN_MIN_NEW"] = "1000000"  # only the monitors may ask now
    daemon = headless.start_daemon(home)
    instance = dg.DagsterInstance.get()
    before = {r.dagster_run.run_id for r in instance.get_run_records()}
    time.sleep(15)  # the daemon's code server is up and its sensors have ticked once, as in a running deployment
    try:
        t0 = time.time()
        simulate(home, drift_start, DRIFTED_DAYS, scenario="vocabulary_drift", drift_start=drift_start)
        challenger = _wait_for_challenger(home, champion[0][0], t0, daemon)
        t1 = time.time()
    finally:
        headless.stop_daemon(daemon)
    print("\nruns after landing (t0 = landing written), times in seconds from t0:")
    print(f"  {'job':<14} {'trigger':<16} {'created':>8} {'started':>8} {'ended':>8}  assets")
    for record in sorted(instance.get_run_records(), key=lambda r: r.create_timestamp):
        run = record.dagster_run
        if run.run_id in before:
            continue
        keys = ", ".join(sorted(k.to_user_string() for k in run.asset_selection or [])[:4])
        print(f"  {run.job_name:<14} {run.tags.get('trending/trigger', 'automation'):<16} "
              f"{record.create_timestamp.timestamp() - t0:8.1f} {(record.start_time or t0) - t0:8.1f} "
              f"{(record.end_time or t0) - t0:8.1f}  {keys}")
    elapsed = t1 - t0
    verdict = "PASS" if challenger and elapsed <= TARGET_S else "FAIL"
    print(f"\nlanding -> gate-passed challenger {challenger}: {elapsed:.1f} s (target <= {TARGET_S:.0f} s) {verdict}")
    return 0 if verdict == "PASS" else 1


def _wait_for_challenger(home, champion: str, t0: float, daemon, timeout_s: float = 900.0) -> str | None:
    """Poll the registry until the challenger alias points at a version registered after ``t0``."""
    from trending_assets.lib import warehouse

    while time.time() - t0 < timeout_s:
        if daemon.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited with code {daemon.returncode}")
        try:
            with warehouse.connect(home.warehouse, wait_s=0.5) as con:
                rows = con.execute(
                    """SELECT a.version_id FROM ml.model_aliases a JOIN ml.model_versions v USING (version_id)
                       WHERE a.alias = 'challenger' AND v.created_at >= to_timestamp(?)::TIMESTAMP""",
                    [t0]).fetchall() if warehouse.table_exists(con, "ml", "model_aliases") else []
        except Exception:  # the warehouse is busy with a run's write: look again in a moment
            rows = []
        if rows:
            return rows[0][0]
        time.sleep(1.0)
    return None


if __name__ == "__main__":
    sys.exit(main())

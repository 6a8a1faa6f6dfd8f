"""The demo drives everything through the real dagster-daemon: sensor, automation, runs — then stops them."""

import os
import re
import subprocess
import sys
from pathlib import Path

TRENDING = str(Path(sys.executable).with_name("trending"))


def test_demo_monitors_drift_retrains_by_itself_and_leaves_no_process_behind(tmp_path):
    env = {**os.environ, "TRENDING_HOME": str(tmp_path / "home")}
    env.pop("DAGSTER_HOME", None)
    # a stable week trains the first champion (volume trigger); the second week drifts
    # production testing has its own in-process loop test (test_rollout_loop.py); `make demo` runs it with the daemon
    result = subprocess.run([TRENDING, "demo", "--weeks", "2", "--bootstrap-weeks", "1", "--drift-week", "2",
                             "--scenario", "vocabulary_drift", "--movies-per-day", "80", "--min-new", "200",
                             "--timeout", "900", "--production-days", "0", "--bad-days", "0",
                             "--ranker-days", "0"], env=env,
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    counts = dict(re.findall(r"^\s+(\w+\.\w+)\s+([\d,]+)$", out, flags=re.MULTILINE))
    for table in ("raw.movies", "raw.feedback_events", "marts.dim_movies", "ml.retraining_log",
                  "monitoring.drift_reports", "monitoring.model_performance"):
        assert int(counts[table].replace(",", "")) > 0, table
    assert re.search(r"^\s+champion #1: - -> xgboost-v1 at .* by asset:xgboost_staging: first champion", out,
                     flags=re.MULTILINE)
    # every request is logged with its kind, decision and reason; the first retrain trained the first champion
    log = re.findall(r"^\s+#(\d+)\s+\S+ (\w+)\s+(run|skip)\s+(\S+( back)?)\s+(.*)$", out, flags=re.MULTILINE)
    kinds = [(kind, decision) for _, kind, decision, *_ in log]
    assert kinds[0][1] == "run" and kinds[0][0] in ("volume", "schedule")
    assert sum(kind == "schedule" for kind, _ in kinds) == 2  # one tick per world week, run or refused
    # the drifted week: the drift report sees the new vocabulary and the drift sensor asks for a retrain
    assert re.search(r"current \S+ \.\. \S+: drift in .*vocabulary", out)
    assert any(kind == "drift" for kind, _ in kinds)
    assert all(outcome != "-" for _, _, decision, outcome, *_ in log if decision == "run")
    group = int(re.search(r"process group (\d+)", out).group(1))
    assert _live_members(group) == [], f"processes of the daemon's group {group} survived the demo"


def _live_members(group: int) -> list[str]:
    """Processes still running in a process group (zombies are dead: this container's init may not reap them)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        state, pgid = fields[0], int(fields[2])
        if pgid == group and state != "Z":
            live.append(stat.parent.name)
    return live

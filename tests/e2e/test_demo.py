"""The demo drives everything through the real dagster-daemon: sensor, automation, runs — then stops them."""

import os
import re
import subprocess
import sys
from pathlib import Path

TRENDING = str(Path(sys.executable).with_name("trending"))


def test_demo_ingests_builds_and_leaves_no_process_behind(tmp_path):
    env = {**os.environ, "TRENDING_HOME": str(tmp_path / "home")}
    env.pop("DAGSTER_HOME", None)
    # six days: the newest three are the backtest slice, so the training window holds the first three
    result = subprocess.run([TRENDING, "demo", "--days", "6", "--timeout", "600"], env=env,
                            capture_output=True, text=True, timeout=800)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    out = result.stdout
    assert "raw partitions 18/18" in out
    counts = dict(re.findall(r"^\s+(\w+\.\w+)\s+([\d,]+)$", out, flags=re.MULTILINE))
    for table in ("raw.movies", "raw.reviews", "raw.feedback_events", "marts.dim_movies", "marts.fct_feedback_events"):
        assert int(counts[table].replace(",", "")) > 0, table
    assert re.search(r"training\s+[0-9a-f]{20}", out)
    # both families trained and judged; the first to pass its gates became champion, with its history row
    assert re.search(r"^\s+xgboost-v1\s+\w+\s+stateless", out, flags=re.MULTILINE)
    assert re.search(r"^\s+transformer-v1\s+\w+\s+stateless", out, flags=re.MULTILINE)
    assert re.search(r"^\s+champion #1: - -> \w+-v1 at .* by asset:\w+_staging: first champion", out, flags=re.MULTILINE)
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

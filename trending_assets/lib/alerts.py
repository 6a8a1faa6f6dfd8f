"""Alert events: a failure the platform noticed, written to the landing zone as a feedback event
(``event_type = "alert"``), so it flows through the feedback contract into ``marts.fct_feedback_events`` beside
what users said, with no second writer on the warehouse."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from trending_assets.lib.home import TrendingHome

ALERT_USER = "system"


def alert_event(run_id: str, job_name: str, message: str, occurred_at: datetime, details: dict | None = None) -> dict:
    """One feedback-contract row describing a failed run; ``payload`` carries the run, the job and the details.
    ``occurred_at`` is UTC (naive, as ``ingest.utc_now`` gives, or timezone-aware)."""
    if occurred_at.tzinfo is not None:
        occurred_at = occurred_at.astimezone(UTC).replace(tzinfo=None)
    payload = {**(details or {}), "run_id": run_id, "job": job_name, "message": message}
    return {
        "event_id": f"alert-{run_id}",
        "user_id": ALERT_USER,
        "movie_id": None,
        "event_type": "alert",
        "value": None,
        "payload": json.dumps(payload, sort_keys=True, default=str),
        "model_version": None,
        "experiment_id": None,
        "variant": None,
        "occurred_at": occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_alert(home: TrendingHome, event: dict) -> Path:
    """Land ``event`` as ``landing/feedback/alerts_<day>_<event_id>.jsonl`` (atomically; rewriting the same
    event id rewrites the same file, so a sensor retried after a crash does not alert twice)."""
    folder = home.landing_dir("feedback")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"alerts_{event['occurred_at'][:10]}_{event['event_id']}.jsonl"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

"""Alert events: feedback-contract rows about failed runs, landed atomically as one file per event."""

from __future__ import annotations

import json
from datetime import date, datetime

from trending_assets.lib import alerts
from trending_assets.lib.contracts import FEEDBACK
from trending_assets.lib.ingest import load_partition
from trending_assets.lib.warehouse import connect

OCCURRED = datetime(2026, 2, 1, 7, 30, 15)
DAY = date(2026, 2, 1)
NOW = datetime(2026, 2, 1, 12, 0)


def event(run_id: str = "r123", message: str = "retrain failed", **details) -> dict:
    return alerts.alert_event(run_id, "retrain_job", message, OCCURRED, details or None)


def test_an_alert_has_exactly_the_feedback_contracts_fields():
    row = event(step="train", attempt=2, at=datetime(2026, 2, 1, 7, 0))
    assert set(row) == set(FEEDBACK.field_names)
    assert row["event_id"] == "alert-r123"
    assert row["event_type"] == "alert"
    assert row["user_id"] == alerts.ALERT_USER
    assert row["occurred_at"] == "2026-02-01T07:30:15Z"
    assert (row["movie_id"], row["value"], row["model_version"], row["experiment_id"], row["variant"]) == (
        None, None, None, None, None)
    payload = json.loads(row["payload"])
    assert payload == {"run_id": "r123", "job": "retrain_job", "message": "retrain failed", "step": "train",
                       "attempt": 2, "at": "2026-02-01 07:00:00"}
    assert json.loads(event()["payload"]) == {"run_id": "r123", "job": "retrain_job", "message": "retrain failed"}


def test_write_alert_lands_one_line_in_the_feedback_folder(home):
    row = event()
    path = alerts.write_alert(home, row)
    assert path == home.landing_dir("feedback") / "alerts_2026-02-01_alert-r123.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == row
    assert path.read_bytes().endswith(b"\n")


def test_rewriting_the_same_event_rewrites_the_same_file_and_leaves_no_temp_files(home):
    first = alerts.write_alert(home, event(message="first try"))
    second = alerts.write_alert(home, event(message="second try"))
    assert first == second
    folder = home.landing_dir("feedback")
    assert sorted(p.name for p in folder.iterdir()) == [first.name]  # no hidden .tmp files either
    lines = second.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert json.loads(json.loads(lines[0])["payload"])["message"] == "second try"

    other = alerts.write_alert(home, event(run_id="r124"))
    assert other != first
    assert sorted(p.name for p in folder.iterdir()) == sorted([first.name, other.name])


def test_the_feedback_contract_accepts_an_alert_line(home, tmp_path):
    alerts.write_alert(home, event(step="train"))
    alerts.write_alert(home, event())  # a retried sensor: same event id, same file
    alerts.write_alert(home, event(run_id="r999", message="ingest failed"))

    with connect(tmp_path / "warehouse.duckdb") as con:
        report = load_partition(con, home.landing, "feedback", DAY, now=NOW)
        rejects = con.execute("SELECT reason FROM raw.feedback_events_rejects").fetchall()
        rows = con.execute("""SELECT event_id, event_id_derived, user_id, movie_id, event_type, value,
                                     payload->>'$.job', payload->>'$.message', model_version, occurred_at
                              FROM raw.feedback_events ORDER BY event_id""").fetchall()

    assert rejects == []
    assert (report.accepted, report.rejected) == (2, 0)
    assert rows == [
        ("alert-r123", False, "system", None, "alert", None, "retrain_job", "retrain failed", None, OCCURRED),
        ("alert-r999", False, "system", None, "alert", None, "retrain_job", "ingest failed", None, OCCURRED),
    ]

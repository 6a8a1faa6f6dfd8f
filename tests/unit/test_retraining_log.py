"""``ml.retraining_log``: naming the run that answered a request after the fact, and finding a run's request."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from trending_assets.lib import retraining_log
from trending_assets.lib.retrain_triggers import DRIFT, MANUAL, Decision, Trigger
from trending_assets.lib.warehouse import connect

REQUESTED = datetime(2026, 2, 1, 6, 0)


def trigger(kind: str = DRIFT, hours: float = 0) -> Trigger:
    return Trigger(kind=kind, reason=f"{kind} asked", requested_at=REQUESTED + timedelta(hours=hours),
                   actor=f"{kind}_sensor", evidence={"share_drifted": 0.6})


@pytest.fixture()
def con(tmp_path: Path):
    with connect(tmp_path / "warehouse.duckdb") as connection:
        yield connection


def entry(con, entry_id: int) -> retraining_log.LogEntry:
    return next(e for e in retraining_log.history(con) if e.id == entry_id)


def test_attach_run_names_the_run_and_keeps_the_outcome_when_none_is_given(con):
    asked = retraining_log.record(con, trigger(), Decision(True, "drift trigger accepted"))
    other = retraining_log.record(con, trigger(MANUAL, 1), Decision(True, "manual"), run_id="r0")
    assert (entry(con, asked).run_id, entry(con, asked).outcome) == (None, None)

    retraining_log.attach_run(con, asked, "r1")
    assert (entry(con, asked).run_id, entry(con, asked).outcome) == ("r1", None)

    retraining_log.set_outcome(con, "r1", "failure")
    retraining_log.attach_run(con, asked, "r1")  # no outcome given: the recorded one stays
    assert (entry(con, asked).run_id, entry(con, asked).outcome) == ("r1", "failure")
    # the other entry is untouched
    assert (entry(con, other).run_id, entry(con, other).outcome) == ("r0", None)


def test_attach_run_sets_the_outcome_when_given(con):
    asked = retraining_log.record(con, trigger(), Decision(True, "drift trigger accepted"))
    retraining_log.attach_run(con, asked, "r2", outcome="success")
    assert (entry(con, asked).run_id, entry(con, asked).outcome) == ("r2", "success")

    retraining_log.attach_run(con, asked, "r3", outcome="held back")  # a rerun replaces both
    assert (entry(con, asked).run_id, entry(con, asked).outcome) == ("r3", "held back")
    # the rest of the entry is as recorded
    e = entry(con, asked)
    assert (e.kind, e.actor, e.decision, e.evidence) == (DRIFT, "drift_sensor", "run", {"share_drifted": 0.6})


def test_attach_run_to_an_unknown_entry_raises(con):
    with pytest.raises(LookupError, match="no retraining_log entry has id 42"):
        retraining_log.attach_run(con, 42, "r1")
    retraining_log.record(con, trigger(), Decision(True, "ok"))
    with pytest.raises(LookupError, match="42"):
        retraining_log.attach_run(con, 42, "r1", outcome="success")
    assert retraining_log.entry_for_run(con, "r1") is None


def test_entry_for_run_finds_the_entry_a_run_answers(con):
    assert retraining_log.entry_for_run(con, "r1") is None  # on an empty warehouse too
    first = retraining_log.record(con, trigger(), Decision(True, "ok"))
    second = retraining_log.record(con, trigger(MANUAL, 1), Decision(True, "manual"), run_id="r7")
    retraining_log.attach_run(con, first, "r1")

    assert retraining_log.entry_for_run(con, "r1") == first
    assert retraining_log.entry_for_run(con, "r7") == second
    assert retraining_log.entry_for_run(con, "r404") is None

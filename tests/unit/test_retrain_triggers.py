"""The shared retraining rules (dedupe, cooldown, volume) and ``ml.retraining_log``."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from trending_assets.lib import retraining_log
from trending_assets.lib.retrain_triggers import (
    DRIFT, MANUAL, SCHEDULE, VOLUME, Decision, Trigger, cooldown, decide, volume_decision,
)
from trending_assets.lib.warehouse import connect

STARTED = datetime(2026, 2, 1, 6, 0)
COOLDOWN_H = 12


def trigger(kind: str, hours_after_start: float, **evidence) -> Trigger:
    return Trigger(kind=kind, reason=f"{kind} asked", requested_at=STARTED + timedelta(hours=hours_after_start),
                   actor=f"{kind}_sensor", evidence=evidence)


@pytest.fixture()
def con(tmp_path: Path):
    with connect(tmp_path / "warehouse.duckdb") as connection:
        yield connection


def test_a_trigger_needs_a_known_kind_and_a_reason():
    with pytest.raises(ValueError, match="unknown trigger kind 'whim'"):
        Trigger("whim", "because", STARTED, "me")
    with pytest.raises(ValueError, match="needs a reason"):
        Trigger(MANUAL, "  ", STARTED, "me")


@pytest.mark.parametrize("hours, runs", [(0.0, False), (11.99, False), (12.0, True), (30.0, True)])
def test_cooldown_refuses_until_exactly_its_hours_have_passed(hours, runs):
    decision = cooldown(trigger(DRIFT, hours), STARTED, COOLDOWN_H)
    assert decision.run is runs


def test_a_cooldown_refusal_says_when_the_next_retrain_may_start():
    decision = cooldown(trigger(SCHEDULE, 3), STARTED, COOLDOWN_H)
    assert decision == Decision(False, "the last retrain started 3.0 h earlier, within the 12 h cooldown; "
                                       "the next may start at 2026-02-01 18:00 UTC")


def test_without_a_previous_retrain_there_is_no_cooldown():
    assert cooldown(trigger(VOLUME, 0), None, COOLDOWN_H).run


def test_manual_bypasses_the_cooldown_but_not_dedupe():
    manual = trigger(MANUAL, 1)
    assert decide(manual, in_flight_run_id=None, last_started_at=STARTED, cooldown_hours=COOLDOWN_H).run
    refused = decide(manual, in_flight_run_id="run-42", last_started_at=STARTED, cooldown_hours=COOLDOWN_H)
    assert refused == Decision(False, "retrain run run-42 is still in flight; one retrain runs at a time")


def test_decide_refuses_in_flight_before_cooldown_and_otherwise_says_why_each_rule_allowed_it():
    late = trigger(DRIFT, 1)
    assert "in flight" in decide(late, in_flight_run_id="r1", last_started_at=STARTED,
                                 cooldown_hours=COOLDOWN_H).reason
    assert "cooldown" in decide(late, in_flight_run_id=None, last_started_at=STARTED,
                                cooldown_hours=COOLDOWN_H).reason
    accepted = decide(trigger(DRIFT, 13), in_flight_run_id=None, last_started_at=STARTED, cooldown_hours=COOLDOWN_H)
    assert accepted == Decision(True, "drift trigger accepted: no retrain is in flight; the last retrain started "
                                      "13.0 h earlier, outside the 12 h cooldown")


@pytest.mark.parametrize("new, runs", [(0, False), (199, False), (200, True), (5000, True)])
def test_volume_needs_at_least_min_new_labeled_movies(new, runs):
    assert volume_decision(new, 200, date(2026, 1, 31)).run is runs


def test_volume_decision_reads_in_the_domains_words():
    assert volume_decision(37, 200, date(2026, 1, 31)).reason == (
        "only 37 new labeled movies since the champion's window was built (2026-01-31); 200 are required")
    assert volume_decision(5, 1, None).reason == "5 new labeled movies with no champion yet, at least the 1 required"
    with pytest.raises(ValueError, match="at least 1"):
        volume_decision(5, 0, None)


def test_an_empty_log_has_no_history_and_no_last_start(con):
    assert retraining_log.history(con) == []
    assert retraining_log.last_started_at(con) is None


def test_the_log_keeps_each_request_its_evidence_and_decision_newest_first(con):
    drift = trigger(DRIFT, 0, psi={"overview_length": 0.31}, share_drifted=0.6)
    first = retraining_log.record(con, drift, Decision(True, "drift trigger accepted: drift asked"), run_id="r1")
    second = retraining_log.record(con, trigger(VOLUME, 2, new_labeled=250),
                                   Decision(False, "within the 12 h cooldown"))

    newest, oldest = retraining_log.history(con)
    assert (newest.id, oldest.id) == (second, first)
    assert oldest.evidence == {"psi": {"overview_length": 0.31}, "share_drifted": 0.6}
    assert (oldest.kind, oldest.actor, oldest.decision, oldest.run_id, oldest.outcome) == (
        DRIFT, "drift_sensor", "run", "r1", None)
    assert (newest.decision, newest.decision_reason, newest.run_id) == ("skip", "within the 12 h cooldown", None)
    assert [e.id for e in retraining_log.history(con, limit=1)] == [second]
    # A skipped request does not restart the cooldown.
    assert retraining_log.last_started_at(con) == STARTED


def test_the_log_survives_reconnecting_and_records_the_outcome(tmp_path: Path):
    path = tmp_path / "warehouse.duckdb"
    with connect(path) as con:
        retraining_log.record(con, trigger(MANUAL, 0), Decision(True, "manual"), run_id="r7")
    with connect(path) as con:
        retraining_log.set_outcome(con, "r7", "failure")
        retraining_log.record(con, trigger(SCHEDULE, 24), Decision(True, "weekly"), run_id="r8")
        entries = retraining_log.history(con)
    assert [(e.run_id, e.outcome) for e in entries] == [("r8", None), ("r7", "failure")]
    assert entries[0].id > entries[1].id


def test_an_outcome_for_an_unknown_run_says_what_to_do(con):
    with pytest.raises(LookupError, match="record the request before its outcome"):
        retraining_log.set_outcome(con, "nope", "success")

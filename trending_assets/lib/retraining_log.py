"""``ml.retraining_log``: every retrain request, what was decided and why, and how the run ended, so a person can
see why each retraining happened (or did not) long after the sensor tick that asked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb

from trending_assets.lib.retrain_triggers import Decision, Trigger

RUN, SKIP = "run", "skip"

DDL = (
    "CREATE SCHEMA IF NOT EXISTS ml",
    "CREATE SEQUENCE IF NOT EXISTS ml.retraining_log_id",
    """CREATE TABLE IF NOT EXISTS ml.retraining_log (
        id BIGINT PRIMARY KEY DEFAULT nextval('ml.retraining_log_id'),  -- order of recording
        requested_at TIMESTAMP NOT NULL,     -- UTC, when the trigger asked
        kind VARCHAR NOT NULL,               -- schedule | volume | drift | performance | manual
        actor VARCHAR NOT NULL,              -- the sensor, schedule or person that asked
        reason VARCHAR NOT NULL,             -- the trigger's sentence
        evidence JSON NOT NULL,              -- the numbers behind it (PSI values, F1 drop, new movie count)
        decision VARCHAR NOT NULL,           -- run | skip
        decision_reason VARCHAR NOT NULL,    -- why (cooldown, in flight, accepted)
        run_id VARCHAR,                      -- the Dagster run that retrained; NULL when skipped
        outcome VARCHAR                      -- NULL until the run ends: success | held back | failure
    )""",
)


@dataclass(frozen=True)
class LogEntry:
    id: int
    requested_at: datetime
    kind: str
    actor: str
    reason: str
    evidence: dict
    decision: str
    decision_reason: str
    run_id: str | None
    outcome: str | None


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)


def record(con: duckdb.DuckDBPyConnection, trigger: Trigger, decision: Decision, run_id: str | None = None) -> int:
    """Append one request and its decision; return the entry's id."""
    ensure_schema(con)
    rows = con.execute(
        """INSERT INTO ml.retraining_log
               (requested_at, kind, actor, reason, evidence, decision, decision_reason, run_id)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
        [trigger.requested_at, trigger.kind, trigger.actor, trigger.reason,
         json.dumps(trigger.evidence, sort_keys=True, default=str), RUN if decision.run else SKIP,
         decision.reason, run_id],
    ).fetchall()
    return rows[0][0]


def set_outcome(con: duckdb.DuckDBPyConnection, run_id: str, outcome: str) -> None:
    """Note how the retrain run ``run_id`` ended (success | failure)."""
    ensure_schema(con)
    updated = con.execute(
        "UPDATE ml.retraining_log SET outcome = ? WHERE run_id = ? RETURNING id", [outcome, run_id]
    ).fetchall()
    if not updated:
        raise LookupError(f"no retraining_log entry has run_id {run_id!r}; record the request before its outcome")


def attach_run(con: duckdb.DuckDBPyConnection, entry_id: int, run_id: str, outcome: str | None = None) -> None:
    """Name the Dagster run that answers entry ``entry_id`` (known only once the daemon created it), and how it
    ended when ``outcome`` is given."""
    ensure_schema(con)
    updated = con.execute(
        "UPDATE ml.retraining_log SET run_id = ?, outcome = coalesce(?, outcome) WHERE id = ? RETURNING id",
        [run_id, outcome, entry_id],
    ).fetchall()
    if not updated:
        raise LookupError(f"no retraining_log entry has id {entry_id!r}")


def entry_for_run(con: duckdb.DuckDBPyConnection, run_id: str) -> int | None:
    """The id of the entry run ``run_id`` answers, if one names it."""
    ensure_schema(con)
    rows = con.execute("SELECT min(id) FROM ml.retraining_log WHERE run_id = ?", [run_id]).fetchall()
    return rows[0][0]


def last_started_at(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """When the newest retrain that was decided to run was requested; None when none has run (cooldown's input)."""
    ensure_schema(con)
    return con.execute("SELECT max(requested_at) FROM ml.retraining_log WHERE decision = ?", [RUN]).fetchall()[0][0]


def history(con: duckdb.DuckDBPyConnection, limit: int | None = None) -> list[LogEntry]:
    """Entries newest first (all, or the ``limit`` newest)."""
    ensure_schema(con)
    rows = con.execute(
        f"""SELECT id, requested_at, kind, actor, reason, evidence, decision, decision_reason, run_id, outcome
            FROM ml.retraining_log ORDER BY requested_at DESC, id DESC{' LIMIT ?' if limit is not None else ''}""",
        [limit] if limit is not None else [],
    ).fetchall()
    return [LogEntry(*row[:5], json.loads(row[5]), *row[6:]) for row in rows]

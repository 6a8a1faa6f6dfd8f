"""``ml.gate_results``: every offline gate verdict on a model version, so staging (and a person) can see which
numbers let a candidate through or held it back, long after the Dagster run that judged it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb

DDL = (
    "CREATE SCHEMA IF NOT EXISTS ml",
    """CREATE TABLE IF NOT EXISTS ml.gate_results (
        version_id VARCHAR NOT NULL,          -- ml.model_versions.version_id
        gate VARCHAR NOT NULL,                -- artifact_loads_and_predicts | non_inferior_macro_f1 | no_genre_collapse
        passed BOOLEAN NOT NULL,
        summary VARCHAR NOT NULL,             -- one sentence with the deciding numbers
        reference VARCHAR,                    -- what the candidate was compared with (champion or baseline)
        metadata JSON NOT NULL,
        evaluated_at TIMESTAMP NOT NULL       -- UTC; a re-judged version keeps its older verdicts too
    )""",
)


@dataclass(frozen=True)
class Verdict:
    version_id: str
    gate: str
    passed: bool
    summary: str
    reference: str | None
    metadata: dict
    evaluated_at: datetime


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)


def record(con: duckdb.DuckDBPyConnection, verdicts: list[Verdict]) -> None:
    """Append verdicts (one transaction)."""
    ensure_schema(con)
    con.begin()
    try:
        for v in verdicts:
            con.execute("INSERT INTO ml.gate_results VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [v.version_id, v.gate, v.passed, v.summary, v.reference,
                         json.dumps(v.metadata, sort_keys=True, default=str), v.evaluated_at])
        con.commit()
    except BaseException:
        con.rollback()
        raise


def latest(con: duckdb.DuckDBPyConnection, version_id: str) -> list[Verdict]:
    """The newest verdict of each gate on ``version_id`` (empty when it was never judged)."""
    ensure_schema(con)
    rows = con.execute(
        """SELECT version_id, gate, passed, summary, reference, metadata, evaluated_at FROM ml.gate_results
           WHERE version_id = ?
           QUALIFY row_number() OVER (PARTITION BY gate ORDER BY evaluated_at DESC) = 1
           ORDER BY gate""",
        [version_id],
    ).fetchall()
    return [Verdict(*row[:5], json.loads(row[5]), row[6]) for row in rows]

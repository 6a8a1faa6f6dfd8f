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


def stronger_first_candidate(
    con: duckdb.DuckDBPyConnection, version_id: str, baseline: str
) -> tuple[str, float, float] | None:
    """Another candidate that also passed every gate against ``baseline`` (so: judged while there was no
    champion) with a higher static-test macro F1 than ``version_id``: (its id, its F1, ours), or None.

    When two families pass their first gates in the same round, the first champion should be the stronger one,
    not whichever staging step happens to run first.
    """
    ensure_schema(con)
    rows = con.execute(
        """WITH latest AS (
               SELECT * FROM ml.gate_results
               QUALIFY row_number() OVER (PARTITION BY version_id, gate ORDER BY evaluated_at DESC) = 1),
           first_round AS (
               SELECT version_id FROM latest GROUP BY version_id
               HAVING bool_and(passed) AND bool_and(reference = ?)),
           scored AS (
               SELECT v.version_id, v.stage,
                      TRY_CAST(json_extract(v.metrics, '$.static_test_macro_f1') AS DOUBLE) AS f1
               FROM ml.model_versions v JOIN first_round USING (version_id))
           SELECT rival.version_id, rival.f1, mine.f1 FROM scored rival, scored mine
           WHERE mine.version_id = ? AND rival.version_id <> mine.version_id AND rival.stage = 'candidate'
             AND rival.f1 > mine.f1
           ORDER BY rival.f1 DESC LIMIT 1""",
        [baseline, version_id],
    ).fetchall()
    return rows[0] if rows else None

"""Ranker candidates for ``/trending``: proposed, tested against the production ranker by the automation, and
promoted or rejected by the test's verdict.

``experiments.rankers`` holds one row per ranker with its status: ``candidate`` (proposed, waiting for a test),
``testing`` (an interleaving test or a bandit against the production ranker is running), ``production`` (orders
``/trending`` for every user outside a ranking experiment; ``popularity`` until another wins), ``rejected`` or
``retired`` (a production ranker a better one replaced). ``ranker_candidate_sensor`` calls ``start_next`` when no
ranking experiment is running and ``settle`` after each tick: an interleaving test decided for the candidate, or a
bandit whose off-policy gate proved the candidate better than the logged mix, promotes it; a test decided the other
way, or stopped, rejects it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from trending_assets.lib import ranking_bandits, ranking_tests
from trending_assets.lib.ingest import utc_now
from trending_assets.lib.rankers import RANKERS
from trending_assets.lib.warehouse import table_exists

DEFAULT_PRODUCTION = "popularity"
DESIGNS = ("interleaving", "bandit")

DDL = (
    "CREATE SCHEMA IF NOT EXISTS experiments",
    """CREATE TABLE IF NOT EXISTS experiments.rankers (
        ranker VARCHAR PRIMARY KEY,            -- a name in rankers.RANKERS
        status VARCHAR NOT NULL,               -- candidate | testing | production | rejected | retired
        design VARCHAR NOT NULL,               -- how a candidate is tested: interleaving | bandit
        allocation_percent DOUBLE NOT NULL,    -- share of users in its test
        proposed_by VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        experiment_id VARCHAR,                 -- its test, once started
        verdict VARCHAR,                       -- why it was promoted or rejected
        updated_at TIMESTAMP NOT NULL
    )""",
)


@dataclass(frozen=True)
class Ranker:
    ranker: str
    status: str
    design: str
    allocation_percent: float
    experiment_id: str | None
    verdict: str | None


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)


def production(con: duckdb.DuckDBPyConnection) -> str:
    """The ranker that orders /trending outside experiments."""
    if not table_exists(con, "experiments", "rankers"):
        return DEFAULT_PRODUCTION
    rows = con.execute("SELECT ranker FROM experiments.rankers WHERE status = 'production'").fetchall()
    return rows[0][0] if rows else DEFAULT_PRODUCTION


def all_rankers(con: duckdb.DuckDBPyConnection) -> list[Ranker]:
    if not table_exists(con, "experiments", "rankers"):
        return []
    rows = con.execute("SELECT ranker, status, design, allocation_percent, experiment_id, verdict "
                       "FROM experiments.rankers ORDER BY updated_at").fetchall()
    return [Ranker(*row) for row in rows]


def propose(con: duckdb.DuckDBPyConnection, ranker: str, proposed_by: str, reason: str,
            design: str = "interleaving", allocation_percent: float = 50.0) -> Ranker:
    """Queue ``ranker`` for a test against the production ranker (a rejected or retired one may come back)."""
    ensure_schema(con)
    if ranker not in RANKERS:
        raise ValueError(f"{ranker!r} is not a ranker; use one of {', '.join(RANKERS)}")
    if design not in DESIGNS:
        raise ValueError(f"--design {design!r}: use one of {', '.join(DESIGNS)}")
    if not 0 < allocation_percent <= 100:
        raise ValueError(f"--allocation {allocation_percent!r}: give a percent of users in (0, 100]")
    if not reason.strip():
        raise ValueError("a ranker candidate needs a reason (--reason): what should make it better?")
    current = {r.ranker: r for r in all_rankers(con)}.get(ranker)
    if ranker == production(con):
        raise ValueError(f"{ranker!r} is already the production ranker")
    if current is not None and current.status in ("candidate", "testing"):
        raise ValueError(f"{ranker!r} is already {current.status}")
    con.execute("DELETE FROM experiments.rankers WHERE ranker = ?", [ranker])
    con.execute("INSERT INTO experiments.rankers VALUES (?, 'candidate', ?, ?, ?, ?, NULL, NULL, ?)",
                [ranker, design, allocation_percent, proposed_by, reason, utc_now()])
    return _get(con, ranker)


def start_next(con: duckdb.DuckDBPyConnection, started_at: datetime) -> Ranker | None:
    """Start the oldest candidate's test against the production ranker, unless a ranking test of a candidate runs
    (one at a time: two candidates tested at once would each be compared with a moving baseline)."""
    ensure_schema(con)
    rankers = all_rankers(con)
    if any(r.status == "testing" for r in rankers):
        return None
    waiting = [r for r in rankers if r.status == "candidate"]
    if not waiting:
        return None
    candidate, incumbent = waiting[0], production(con)
    experiment_id = f"ranker-{candidate.ranker}-vs-{incumbent}"
    if candidate.design == "interleaving":
        ranking_tests.start(con, experiment_id, incumbent, candidate.ranker, started_at,
                            allocation_percent=candidate.allocation_percent, min_users=200)
    else:
        ranking_bandits.start(con, experiment_id, [incumbent, candidate.ranker], started_at)
    con.execute("UPDATE experiments.rankers SET status = 'testing', experiment_id = ?, updated_at = ? "
                "WHERE ranker = ?", [experiment_id, utc_now(), candidate.ranker])
    return _get(con, candidate.ranker)


def settle(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Promote or reject each candidate whose test has an outcome; returns one line per change."""
    lines = []
    for r in [r for r in all_rankers(con) if r.status == "testing"]:
        outcome = _outcome(con, r)
        if outcome is None:
            continue
        won, verdict = outcome
        if won:
            con.execute("UPDATE experiments.rankers SET status = 'retired', verdict = ?, updated_at = ? "
                        "WHERE status = 'production'", [f"replaced by {r.ranker}", utc_now()])
            if r.design == "bandit":  # proven: the bandit's job is done, everyone gets the winner
                ranking_bandits.stop(con, r.experiment_id, f"promoted {r.ranker}: {verdict}")
        status = "production" if won else "rejected"
        con.execute("UPDATE experiments.rankers SET status = ?, verdict = ?, updated_at = ? WHERE ranker = ?",
                    [status, verdict, utc_now(), r.ranker])
        lines.append(f"ranker {r.ranker}: {status} ({verdict})")
    return lines


def _outcome(con: duckdb.DuckDBPyConnection, r: Ranker) -> tuple[bool, str] | None:
    """(promote?, why) once the candidate's test has an outcome; None while it runs undecided."""
    if r.design == "interleaving":
        rows = con.execute("SELECT status, verdict FROM experiments.ranking_tests WHERE experiment_id = ?",
                           [r.experiment_id]).fetchall()
        if not rows or rows[0][0] == "running":
            return None
        status, verdict = rows[0]
        winner = con.execute("SELECT winner FROM experiments.interleaving_results WHERE experiment_id = ? "
                             "ORDER BY analysed_at DESC LIMIT 1", [r.experiment_id]).fetchall()
        won = status == "decided" and bool(winner) and winner[0][0] == r.ranker
        return won, f"{r.experiment_id} {status}: {verdict}"
    rows = con.execute("SELECT status, verdict FROM experiments.ranking_bandits WHERE experiment_id = ?",
                       [r.experiment_id]).fetchall()
    if not rows:
        return None
    status, verdict = rows[0]
    if verdict and f"always {r.ranker}: passed" in verdict:
        return True, f"{r.experiment_id}: {verdict}"
    if status != "running":
        return False, f"{r.experiment_id} stopped without proving {r.ranker}: {verdict or 'no verdict'}"
    return None


def _get(con: duckdb.DuckDBPyConnection, ranker: str) -> Ranker:
    return next(r for r in all_rankers(con) if r.ranker == ranker)

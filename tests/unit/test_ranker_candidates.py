"""Ranker candidates in a real DuckDB: proposed, put under test against the production ranker one at a time,
then promoted (the plan's ranker changes) or rejected by the test's outcome."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from trending_assets.lib import ranker_candidates as candidates
from trending_assets.lib import ranking_bandits, ranking_tests

STARTED = datetime(2026, 1, 1)


@pytest.fixture
def con():
    con = duckdb.connect()
    yield con
    con.close()


def decide(con, experiment_id: str, winner: str | None, status: str = "decided") -> None:
    """What interleaving_analysis records when a test ends."""
    test = next(t for t in ranking_tests.running(con) if t.experiment_id == experiment_id)
    con.execute("INSERT INTO experiments.interleaving_results (experiment_id, analysed_at, ranker_a, ranker_b, users, "
                "wins_a, wins_b, ties, winner) VALUES (?, ?, ?, ?, 500, 100, 300, 50, ?)",
                [experiment_id, STARTED, test.ranker_a, test.ranker_b, winner])
    ranking_tests.finish(con, experiment_id, status, f"{winner or 'nobody'} wins")


def test_a_candidate_is_tested_against_production_and_promoted_when_it_wins(con):
    assert candidates.production(con) == "popularity"
    candidates.propose(con, "genre_taste", "ana", "personalised lists should earn more clicks")
    assert candidates.settle(con) == []
    started = candidates.start_next(con, STARTED)
    assert started.status == "testing" and started.experiment_id == "ranker-genre_taste-vs-popularity"
    test = ranking_tests.running(con)[0]
    assert (test.ranker_a, test.ranker_b, test.allocation_percent) == ("popularity", "genre_taste", 50.0)
    assert candidates.start_next(con, STARTED) is None  # one test at a time
    assert candidates.settle(con) == []  # still running
    decide(con, started.experiment_id, "genre_taste")
    assert candidates.settle(con) == ["ranker genre_taste: production (ranker-genre_taste-vs-popularity decided: "
                                      "genre_taste wins)"]
    assert candidates.production(con) == "genre_taste"
    with pytest.raises(ValueError, match="already the production ranker"):
        candidates.propose(con, "genre_taste", "ana", "again")
    # popularity, now the challenger, loses its own test and is rejected; production stays
    candidates.propose(con, "popularity", "bo", "maybe the crowd knows best")
    again = candidates.start_next(con, STARTED)
    assert ranking_tests.running(con)[0].ranker_a == "genre_taste"
    decide(con, again.experiment_id, "genre_taste")
    assert candidates.settle(con)[0].startswith("ranker popularity: rejected")
    assert candidates.production(con) == "genre_taste"


def test_a_bandit_candidate_is_promoted_when_the_off_policy_gate_proves_it_and_the_bandit_stops(con):
    candidates.propose(con, "genre_taste", "ana", "personalised", design="bandit")
    started = candidates.start_next(con, STARTED)
    bandit = ranking_bandits.running(con)[0]
    assert bandit.arms == ["popularity", "genre_taste"] and started.design == "bandit"
    con.execute("UPDATE experiments.ranking_bandits SET verdict = 'always popularity: passed: ...'")
    assert candidates.settle(con) == []  # the incumbent passing proves nothing for the candidate
    con.execute("UPDATE experiments.ranking_bandits SET verdict = 'always genre_taste: passed: DR 0.2'")
    assert candidates.settle(con)[0].startswith("ranker genre_taste: production")
    assert ranking_bandits.running(con) == [] and candidates.production(con) == "genre_taste"


def test_a_stopped_test_rejects_the_candidate_and_bad_proposals_name_the_fix(con):
    candidates.propose(con, "genre_taste", "ana", "personalised")
    started = candidates.start_next(con, STARTED)
    ranking_tests.finish(con, started.experiment_id, "stopped", "stopped by hand")
    assert candidates.settle(con)[0].startswith("ranker genre_taste: rejected")
    with pytest.raises(ValueError, match="'trendy' is not a ranker; use one of popularity"):
        candidates.propose(con, "trendy", "ana", "new")
    with pytest.raises(ValueError, match="--design 'ab'"):
        candidates.propose(con, "genre_taste", "ana", "x", design="ab")
    with pytest.raises(ValueError, match="needs a reason"):
        candidates.propose(con, "genre_taste", "ana", " ")
    candidates.propose(con, "genre_taste", "ana", "try again with more profiles")  # a rejected one may return
    with pytest.raises(ValueError, match="already candidate"):
        candidates.propose(con, "genre_taste", "ana", "twice")

"""The interleaving credit as the warehouse computes it (``ranking_tests.user_credits``) against the library's
``interleaving.credit``, on lists and clicks logged as the router and the simulated users log them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pytest

from trending_assets.lib import interleaving, ranking_tests

STARTED = datetime(2026, 1, 1)


def logged(design: str, requests: int = 300, seed: int = 0):
    """A DuckDB with an interleaving test and ``requests`` logged lists with clicks; the library's credit per user."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.fct_feedback_events (event_type VARCHAR, user_id VARCHAR, movie_id VARCHAR, "
                "experiment_id VARCHAR, payload VARCHAR, occurred_at TIMESTAMP)")
    test = ranking_tests.start(con, "t", "popularity", "genre_taste", STARTED, design=design)
    rng, expected, rows = np.random.default_rng(seed), {}, []
    movies = [f"m{i:02d}" for i in range(30)]
    for r in range(requests):
        user, request, at = f"u{r % 80}", f"r{r}", STARTED + timedelta(minutes=r + 1)
        a, b = list(rng.permutation(movies)), list(rng.permutation(movies))
        merged = interleaving.interleave_for(a, b, 10, "salt", user, request, method=design)
        rows.append(("exposure", user, None, "t", json.dumps({"request_id": request}), at))
        for position, (movie, team) in enumerate(zip(merged.items, merged.teams)):
            payload = {"request_id": request, "position": position + 1, "team": team}
            if design == "balanced":
                payload |= {"rank_a": a.index(movie) + 1, "rank_b": b.index(movie) + 1}
            rows.append(("impression", user, movie, "t", json.dumps(payload), at))
        clicks = [m for m in merged.items if rng.random() < 0.15]
        rows += [("click", user, m, None, json.dumps({"request_id": request}), at) for m in clicks]
        outcome = interleaving.credit(merged, clicks)
        mine = expected.setdefault(user, [0, 0])
        mine[0] += outcome.credit_a
        mine[1] += outcome.credit_b
    con.executemany("INSERT INTO marts.fct_feedback_events VALUES (?, ?, ?, ?, ?, ?)", rows)
    return con, test, expected


@pytest.mark.parametrize("design", ["team_draft", "balanced"])
def test_the_warehouse_credits_clicks_exactly_as_the_library_does(design):
    con, test, expected = logged(design)
    credits = ranking_tests.user_credits(con, test)
    got = {u: [a, b] for u, a, b in credits.select("user_id", "credit_a", "credit_b").iter_rows()}
    assert got == expected
    credited = sum(a + b for a, b in got.values())
    clicks = con.execute("SELECT count(*) FROM marts.fct_feedback_events WHERE event_type = 'click'").fetchall()[0][0]
    assert clicks > 100  # enough clicks to mean something
    # team draft credits every click to exactly one team; balanced's top-k rule credits a click in both rankers'
    # top k to both
    assert (credited == clicks) if design == "team_draft" else (credited > clicks)


def test_an_unknown_design_is_refused_with_the_choices():
    con = duckdb.connect()
    with pytest.raises(ValueError, match="--design 'probabilistic': use one of team_draft, balanced"):
        ranking_tests.start(con, "t", "popularity", "genre_taste", STARTED, design="probabilistic")

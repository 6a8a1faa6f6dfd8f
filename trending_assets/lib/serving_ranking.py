"""How ``/trending`` orders its movies: by popularity, or by the ranker a ranking experiment gives the user.

A ranking experiment is a plan ``Experiment`` on surface ``ranking`` whose variants name rankers
(``rankers.RANKERS``). With design ``ab`` or ``bandit`` the user's variant orders the list, and the exposure logs
the variant's weight in the plan as its propensity (a bandit's weights are its current probabilities,
``ranking_bandits``; a bandit's exposure also logs all of them, for the allocation audit). With design
``team_draft`` or ``balanced`` every allocated user sees one list merged from both rankers' orders (the same list
for the same request id in every process), and each position records the team (A: the first variant, B: the
second) that contributed it: the impression log carries it, and team draft credits clicks on it to that team.
Balanced interleaving credits by the rankers' own ranks, so its impressions also carry the movie's rank in A's and
in B's ranking (``rank_a``, ``rank_b``).

Users outside every ranking experiment get the plan's production ranker (``plan.ranker``: popularity until a
candidate wins its test, ``ranker_candidates``). Rankers choose among the ``CANDIDATES`` most popular catalog
movies. A personalised ranker reads the user's genre profile, published by the ``serving/user_profiles`` asset from the genres shown on the movies the user clicked
(``serving_catalog.build_profiles``); a user without one is ranked by popularity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from trending_assets.lib import assignment, interleaving, rankers, watched_file
from trending_assets.lib.deployment_plan import INTERLEAVED, DeploymentPlan

CANDIDATES = 100
TEAMS = ("A", "B")


@dataclass(frozen=True)
class Ranked:
    """The catalog rows to list, in order; the team of each row when interleaved; the exposure to log, if any."""

    rows: list[int]
    teams: list[str] | None = None
    exposure: assignment.Assignment | None = None
    payload: dict | None = None
    ranks: list[tuple[int, int]] | None = None  # balanced: each position's movie's rank in A's and B's ranking

    def position_payloads(self) -> list[dict] | None:
        """What each impression adds to its payload: the team, and for balanced interleaving both ranks (its
        credit needs them at click time)."""
        if self.teams is None:
            return None
        if self.ranks is None:
            return [{"team": team} for team in self.teams]
        return [{"team": team, "rank_a": a, "rank_b": b} for team, (a, b) in zip(self.teams, self.ranks)]


def rank(plan: DeploymentPlan, user_id: str, limit: int, catalog, scored, profile: dict[str, float],
         model_version: str, request_id: str = "") -> Ranked:
    """The rows of ``catalog.frame`` (sorted by popularity) that ``user_id`` sees, best first.

    ``scored`` holds the user's model's genres for every catalog row (the candidates' genres); ``profile`` is the
    user's genre profile; ``model_version`` serves them. ``request_id`` seeds the interleaving.
    """
    height = catalog.frame.height
    chosen = assignment.assign_variant(plan, "ranking", user_id)
    if chosen is None and plan.ranker == "popularity":  # the catalog is sorted by popularity already
        return Ranked(list(range(min(limit, height))))
    rows = range(min(CANDIDATES, height))
    popularity = catalog.frame["popularity"].fill_null(0.0)
    ids = catalog.frame["movie_id"]
    candidates = [rankers.Candidate(ids[r], float(popularity[r]), tuple(scored.names(r))) for r in rows]
    if chosen is None:  # the production ranker a candidate test promoted
        return Ranked([catalog.rows[m] for m in rankers.RANKERS[plan.ranker](candidates, profile)[:limit]])
    experiment, variant = chosen
    payload = {"surface": "ranking", "design": experiment.design}
    if experiment.design not in INTERLEAVED:  # ab or bandit: the user's variant orders the list
        order = rankers.RANKERS[variant.ranker](candidates, profile)[:limit]
        # the propensity is the variant's weight in this plan: what off-policy evaluation of a bandit needs
        payload.update(ranker=variant.ranker, propensity=variant.weight)
        if experiment.design == "bandit":  # the whole distribution drawn from: the allocation audit compares with it
            payload["weights"] = {v.name: v.weight for v in experiment.variants}
        return Ranked([catalog.rows[m] for m in order], None,
                      assignment.Assignment(model_version, "experiment", experiment.experiment_id, variant.name),
                      payload)
    first, second = experiment.variants
    a = rankers.RANKERS[first.ranker](candidates, profile)
    b = rankers.RANKERS[second.ranker](candidates, profile)
    merged = interleaving.interleave_for(a, b, limit, experiment.salt, user_id, request_id, method=experiment.design)
    ranks = None
    if experiment.design == "balanced":
        rank_a, rank_b = ({m: i + 1 for i, m in enumerate(order)} for order in (a, b))
        ranks = [(rank_a.get(m, len(a) + 1), rank_b.get(m, len(b) + 1)) for m in merged.items]
    return Ranked([catalog.rows[m] for m in merged.items], list(merged.teams),
                  assignment.Assignment(model_version, "experiment", experiment.experiment_id, "interleaved"),
                  {**payload, "rankers": {"A": first.ranker, "B": second.ranker}}, ranks)



class Profiles:
    """Users' genre profiles from the published file (``serving/user_profiles``), re-read when it changes."""

    def __init__(self, path: Path):
        self.path, self.stamp, self.by_user = path, None, {}

    def refresh(self) -> bool:
        stamp = watched_file.new_stamp(self.path, self.stamp)
        if stamp is None:
            return False
        by_user: dict[str, dict[str, float]] = {}
        for user_id, genre, weight in pl.read_parquet(self.path).iter_rows():
            by_user.setdefault(user_id, {})[genre] = weight
        self.stamp, self.by_user = stamp, by_user  # swapped whole: a request sees one file or the other
        return True

    def of(self, user_id: str) -> dict[str, float]:
        return self.by_user.get(user_id, {})

"""What the genre-threshold layer learns from its logs, and how sure it is.

``decisions`` joins the layer's logged draws with the genres each listed movie showed (its impression) and the
movies' labels (``marts.dim_movies``): one row per request and genre, whose reward is the share of the request's
labelled movies where showing or hiding the genre was right. ``analyse`` rebuilds every genre's Thompson-sampling
bandit from those rows since the layer's epoch (its start or last reset), so the state is a pure function of the
logs, and estimates off-policy, per genre, "always the learned threshold" and "always the model's own threshold"
(doubly robust, intervals over users): the gate says where the learned one is proven better.
"""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl

from trending_assets.lib import off_policy
from trending_assets.lib.policy_layer import nearest
from trending_assets.lib.policy_layer_store import Layer


def decisions(con: duckdb.DuckDBPyConnection, layer: Layer) -> pl.DataFrame:
    """One row per logged request and genre since the epoch: user_id, genre, threshold, propensity, and the reward:
    the share of the request's labelled movies where showing or hiding the genre matched the label."""
    return con.sql(
        """WITH decided AS (
               SELECT json_extract_string(payload, '$.request_id') AS request_id, user_id,
                      unnest(CAST(json_extract(payload, '$.genres') AS VARCHAR[])) AS genre,
                      unnest(CAST(json_extract(payload, '$.thresholds') AS DOUBLE[])) AS threshold,
                      unnest(CAST(json_extract(payload, '$.propensities') AS DOUBLE[])) AS propensity
               FROM marts.fct_feedback_events
               WHERE event_type = 'exposure' AND experiment_id = ? AND model_version = ? AND occurred_at > ?),
           shown AS (
               SELECT json_extract_string(i.payload, '$.request_id') AS request_id, i.movie_id,
                      CAST(json_extract(i.payload, '$.genres') AS VARCHAR[]) AS shown, m.genres AS truth
               FROM marts.fct_feedback_events i JOIN marts.dim_movies m USING (movie_id)
               WHERE i.event_type = 'impression' AND i.occurred_at > ? AND len(m.genres) > 0
                 AND json_extract_string(i.payload, '$.request_id') IN (SELECT request_id FROM decided))
           SELECT d.user_id, d.genre, d.threshold, d.propensity,
                  avg(CASE WHEN list_contains(s.shown, d.genre) = list_contains(s.truth, d.genre)
                      THEN 1.0 ELSE 0.0 END) AS reward
           FROM decided d JOIN shown s USING (request_id)
           GROUP BY d.request_id, d.user_id, d.genre, d.threshold, d.propensity
           ORDER BY d.genre, d.request_id""",
        params=[layer.layer_id, layer.model_version, layer.epoch, layer.epoch]).pl()


def analyse(layer: Layer, logged: pl.DataFrame, previous: dict[str, float] | None = None,
            n_resamples: int = 500) -> dict:
    """The layer rebuilt from ``logged`` (``decisions``): its state, the distributions users draw from next, and
    per genre the learned threshold with the off-policy values of it and of the model's own threshold."""
    learned = layer.fresh()
    sums = logged.group_by("genre", "threshold").agg(pl.len().alias("n"), pl.col("reward").sum())
    for genre, threshold, n, reward in sums.iter_rows():
        if genre in learned.genres:  # a genre the model no longer has cannot be served again
            learned.add_evidence(genre, threshold, n, reward)
    best, previous = learned.current_thresholds(), previous or {}
    rows = []
    for genre in layer.genres:
        mine = logged.filter(pl.col("genre") == genre)
        row = {"genre": genre, "threshold": best[genre],
               "previous": previous.get(genre, nearest(layer.thresholds, layer.baseline)),
               "distribution": learned.distribution(genre), "decisions": mine.height}
        rows.append(row | _off_policy(layer, mine, best[genre], n_resamples))
    changed = [r for r in rows if r["threshold"] != r["previous"]]
    return {"state": learned.state(), "rows": rows, "changed": changed, "line": _line(layer, rows, changed)}


def _off_policy(layer: Layer, mine: pl.DataFrame, learned: float, n_resamples: int) -> dict:
    empty = {"logged_accuracy": None, "learned_dr": None, "learned_low": None, "learned_high": None,
             "model_dr": None, "model_low": None, "model_high": None, "gate_passed": False,
             "reason": "no labelled decisions yet"}
    if mine.is_empty():
        return empty
    actions, rewards = mine["threshold"].to_list(), mine["reward"].to_numpy()
    propensities, users = mine["propensity"].to_numpy(), mine["user_id"].to_list()
    arms = [repr(float(t)) for t in layer.thresholds]
    if not set(map(repr, actions)) <= set(arms):
        raise ValueError(f"logged thresholds {sorted(set(actions))} are not this layer's {layer.thresholds}")

    def always(threshold: float) -> off_policy.Estimate:
        target = np.zeros((len(actions), len(arms)))
        target[:, arms.index(repr(float(threshold)))] = 1.0
        return off_policy.doubly_robust([repr(a) for a in actions], rewards, propensities, target, arms=arms,
                                        n_resamples=n_resamples, groups=users)

    logged_value = float(rewards.mean())
    model = always(nearest(layer.thresholds, layer.baseline))
    if learned == nearest(layer.thresholds, layer.baseline):
        return {**empty, "logged_accuracy": logged_value, "model_dr": model.value, "model_low": model.ci_low,
                "model_high": model.ci_high,
                "reason": "no threshold is ahead of the model's own with 95% posterior probability yet"}
    candidate = always(learned)
    decision = off_policy.gate(candidate, model.value)
    return {"logged_accuracy": logged_value, "learned_dr": candidate.value, "learned_low": candidate.ci_low,
            "learned_high": candidate.ci_high, "model_dr": model.value, "model_low": model.ci_low,
            "model_high": model.ci_high, "gate_passed": decision.passed, "reason": decision.reason}


def _line(layer: Layer, rows: list[dict], changed: list[dict]) -> str:
    decided = sum(r["decisions"] for r in rows) // max(len(rows), 1)
    moved = [r for r in rows if r["threshold"] != nearest(layer.thresholds, layer.baseline)]
    if not moved:
        return (f"{layer.layer_id} for {layer.model_version}: every genre keeps the model's threshold "
                f"{layer.baseline:.2f} ({decided} labelled requests per genre)")
    parts = []
    for r in moved:
        proof = (f"DR accuracy {r['learned_dr']:.3f} [{r['learned_low']:.3f}, {r['learned_high']:.3f}] vs "
                 f"{r['model_dr']:.3f} at {layer.baseline:.2f}: {'proven' if r['gate_passed'] else 'not proven'}"
                 if r["learned_dr"] is not None else "no labelled decisions")
        parts.append(f"{r['genre']} {r['threshold']:.2f} ({proof})")
    news = f"; changed since the last analysis: {', '.join(r['genre'] for r in changed)}" if changed else ""
    return (f"{layer.layer_id} for {layer.model_version} ({decided} labelled requests per genre): "
            f"{len(moved)} of {len(rows)} genres moved from {layer.baseline:.2f}: {'; '.join(parts)}{news}")

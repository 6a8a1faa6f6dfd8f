"""The served genre-threshold layer (``policy_layer``): its record and history in the warehouse, and its file.

A running layer adapts the champion's per-genre tag thresholds for the users the champion serves outside any model
experiment (no canary, A/B or holdout: a layer tuned to the champion would bias a comparison with a challenger).
The router draws each user's threshold per genre and day from the published distributions (``published``,
``publish``) and logs the draw with its propensity in an exposure of the layer (``experiment_id`` = the layer id,
payload ``genres``, ``thresholds``, ``propensities``); ``policy_layer_learning`` learns from those logs.

A layer belongs to one model version. When the champion changes, ``rebase`` starts it over for the new one; ``reset``
forgets what it learned; both, and every analysis (``save``), are rows of ``experiments.policy_layer_history``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from trending_assets.lib import atomic_file
from trending_assets.lib.ingest import utc_now
from trending_assets.lib.policy_layer import DEFAULT_THRESHOLDS, GenreThresholds, check_thresholds, nearest
from trending_assets.lib.warehouse import table_exists

LAYER_ID = "genre-thresholds"

DDL = (
    "CREATE SCHEMA IF NOT EXISTS experiments",
    """CREATE TABLE IF NOT EXISTS experiments.policy_layers (
        layer_id VARCHAR PRIMARY KEY,
        model_version VARCHAR NOT NULL,        -- the champion whose probabilities the layer thresholds
        genres JSON NOT NULL,                  -- that model's genres, in its order
        baseline DOUBLE NOT NULL,              -- the model's own threshold: what the layer is compared with
        thresholds JSON NOT NULL,              -- the candidate thresholds (the arms of every genre's bandit)
        floor DOUBLE NOT NULL,
        warmup BIGINT NOT NULL,                -- requests per threshold before a genre's bandit moves
        status VARCHAR NOT NULL,               -- running | stopped
        epoch TIMESTAMP NOT NULL,              -- data watermark of the start or the last reset: logs after it count
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS experiments.policy_layer_history (
        layer_id VARCHAR NOT NULL,
        analysed_at TIMESTAMP NOT NULL,
        event VARCHAR NOT NULL,                -- learned | reset | rebased | started | stopped
        genre VARCHAR,                         -- null for reset/rebase/start/stop rows
        threshold DOUBLE,                      -- the learned threshold (highest posterior mean)
        previous DOUBLE,                       -- the learned threshold at the last analysis
        distribution JSON,                     -- what users draw from now, by threshold
        decisions BIGINT,                      -- logged requests for the genre since the epoch
        logged_accuracy DOUBLE,                -- the logged decisions' own accuracy
        learned_dr DOUBLE, learned_low DOUBLE, learned_high DOUBLE,    -- "always the learned threshold"
        model_dr DOUBLE, model_low DOUBLE, model_high DOUBLE,          -- "always the model's threshold"
        gate_passed BOOLEAN,                   -- the learned threshold's lower bound above the model threshold's value
        reason VARCHAR NOT NULL
    )""",
)


@dataclass(frozen=True)
class Layer:
    layer_id: str
    model_version: str
    genres: list[str]
    baseline: float
    thresholds: list[float]
    floor: float
    warmup: int
    status: str
    epoch: datetime

    def fresh(self) -> GenreThresholds:
        """The layer at its prior: every genre uniform over the thresholds until it warms up."""
        return GenreThresholds(self.genres, self.thresholds, floor=self.floor, warmup=self.warmup,
                               salt=self.layer_id, baseline=self.baseline)


def champion_genres(con: duckdb.DuckDBPyConnection) -> tuple[str, list[str], float]:
    """The champion's version id, its genres (in its order) and its own threshold: what a layer is built over."""
    from trending_assets.lib import genre_model

    try:
        version, model = genre_model.load_alias(con, "champion", device="cpu")
    except LookupError:
        raise ValueError("no champion yet: the policy layer thresholds the champion's probabilities; promote a "
                         "model first (make demo does)") from None
    return version, list(model.genres), genre_model.threshold_of(model)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)


def start(con: duckdb.DuckDBPyConnection, model_version: str, genres: list[str], baseline: float, epoch: datetime,
          thresholds=DEFAULT_THRESHOLDS, floor: float = 0.1, warmup: int = 20, actor: str = "cli") -> Layer:
    """Start (or restart, after a stop) the layer for ``model_version``; refuses while it runs."""
    ensure_schema(con)
    thresholds = list(check_thresholds(thresholds))
    if not 0 < floor < 1:
        raise ValueError(f"--floor {floor!r}: give a share in (0, 1); off-policy evaluation needs every threshold "
                         "logged with some probability")
    current = get(con)
    if current is not None and current.status == "running":
        raise ValueError(f"the policy layer {LAYER_ID!r} is already running; reset it (`trending policy-layer "
                         "reset`) or stop it first")
    GenreThresholds(genres, thresholds, floor=floor, warmup=warmup)  # validates genres and parameters
    con.execute("DELETE FROM experiments.policy_layers WHERE layer_id = ?", [LAYER_ID])
    con.execute("INSERT INTO experiments.policy_layers VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
                [LAYER_ID, model_version, json.dumps(genres), baseline, json.dumps(thresholds), floor, warmup,
                 epoch, utc_now()])
    _event(con, "started", f"{actor}: for {model_version}, {len(genres)} genres, thresholds {thresholds}")
    return get(con)


def get(con: duckdb.DuckDBPyConnection) -> Layer | None:
    if not table_exists(con, "experiments", "policy_layers"):
        return None
    rows = con.execute("SELECT layer_id, model_version, genres, baseline, thresholds, floor, warmup, status, epoch "
                       "FROM experiments.policy_layers WHERE layer_id = ?", [LAYER_ID]).fetchall()
    if not rows:
        return None
    r = rows[0]
    return Layer(r[0], r[1], json.loads(r[2]), r[3], json.loads(r[4]), r[5], r[6], r[7], r[8])


def reset(con: duckdb.DuckDBPyConnection, epoch: datetime, reason: str) -> Layer:
    """Forget everything learned: the epoch moves to ``epoch``, so only later logs count; the record stays."""
    layer = _running(con)
    con.execute("UPDATE experiments.policy_layers SET epoch = ? WHERE layer_id = ?", [epoch, layer.layer_id])
    _event(con, "reset", reason)
    return get(con)


def rebase(con: duckdb.DuckDBPyConnection, model_version: str, genres: list[str], baseline: float,
           epoch: datetime) -> Layer:
    """The champion changed: the layer starts over for ``model_version`` (its probabilities are another model's)."""
    layer = _running(con)
    con.execute("UPDATE experiments.policy_layers SET model_version = ?, genres = ?, baseline = ?, epoch = ? "
                "WHERE layer_id = ?", [model_version, json.dumps(genres), baseline, epoch, layer.layer_id])
    _event(con, "rebased", f"the champion changed from {layer.model_version} to {model_version}: learning starts "
                           "over for its probabilities")
    return get(con)


def stop(con: duckdb.DuckDBPyConnection, reason: str) -> None:
    layer = _running(con)
    con.execute("UPDATE experiments.policy_layers SET status = 'stopped' WHERE layer_id = ?", [layer.layer_id])
    _event(con, "stopped", reason)


def previous_thresholds(con: duckdb.DuckDBPyConnection, layer: Layer) -> dict[str, float]:
    """Each genre's learned threshold at the last analysis since the epoch (what the UI compares against)."""
    rows = con.execute("SELECT genre, arg_max(threshold, analysed_at) FROM experiments.policy_layer_history "
                       "WHERE layer_id = ? AND event = 'learned' AND analysed_at > ? GROUP BY genre",
                       [layer.layer_id, _last_event_at(con, layer)]).fetchall()
    return dict(rows)


def save(con: duckdb.DuckDBPyConnection, layer: Layer, result: dict) -> None:
    now = utc_now()
    for r in result["rows"]:
        con.execute("INSERT INTO experiments.policy_layer_history VALUES (?, ?, 'learned', ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "?, ?, ?, ?, ?)",
                    [layer.layer_id, now, r["genre"], r["threshold"], r["previous"],
                     json.dumps({repr(t): p for t, p in r["distribution"].items()}), r["decisions"],
                     r["logged_accuracy"], r["learned_dr"], r["learned_low"], r["learned_high"], r["model_dr"],
                     r["model_low"], r["model_high"], r["gate_passed"], r["reason"]])


def published(layer: Layer, state: dict | None = None) -> dict:
    """What the router reads: per genre, the distribution over thresholds users draw from (the prior if no state)."""
    learned = GenreThresholds.from_state(state) if state is not None else layer.fresh()
    return {"layer_id": layer.layer_id, "model_version": layer.model_version, "salt": learned.salt,
            "baseline": layer.baseline, "thresholds": list(learned.thresholds), "epoch": layer.epoch.isoformat(),
            "active": layer.status == "running", "published_at": utc_now().isoformat(),
            "genres": {genre: list(learned.distribution(genre).values()) for genre in layer.genres}}


def publish(layer: Layer, path: Path, state: dict | None = None) -> Path:
    """Write ``published(layer, state)`` atomically: the serving API hot-reloads the file."""
    return atomic_file.write_json(path, published(layer, state))


def read(path: Path) -> dict:
    """The published layer file, as ``published`` wrote it."""
    return json.loads(Path(path).read_text())


def _running(con: duckdb.DuckDBPyConnection) -> Layer:
    layer = get(con)
    if layer is None or layer.status != "running":
        raise ValueError(f"the policy layer {LAYER_ID!r} is not running; start it with `trending policy-layer start`")
    return layer


def _event(con: duckdb.DuckDBPyConnection, event: str, reason: str) -> None:
    con.execute("INSERT INTO experiments.policy_layer_history (layer_id, analysed_at, event, reason) "
                "VALUES (?, ?, ?, ?)", [LAYER_ID, utc_now(), event, reason])


def history_lines(con: duckdb.DuckDBPyConnection, layer: Layer, moved_only: bool = False) -> list[str]:
    """The newest analysis, a line per genre (``moved_only``: those off the model's threshold), then the layer's
    events since its start: what `trending policy-layer show` and the demo print."""
    newest = con.execute(
        "SELECT genre, threshold, distribution, decisions, learned_dr, learned_low, learned_high, model_dr, "
        "gate_passed, reason FROM experiments.policy_layer_history WHERE layer_id = ? AND event = 'learned' AND "
        "analysed_at = (SELECT max(analysed_at) FROM experiments.policy_layer_history WHERE layer_id = ? AND "
        "event = 'learned' AND analysed_at > ?) ORDER BY genre",
        [layer.layer_id, layer.layer_id, _last_event_at(con, layer)]).fetchall()
    model = nearest(layer.thresholds, layer.baseline)
    lines = []
    for genre, threshold, distribution, requests, dr, low, high, model_dr, passed, reason in newest:
        if moved_only and threshold == model:
            continue
        share = json.loads(distribution).get(repr(float(threshold)), 0.0)
        proof = (f"always {threshold:.2f}: DR accuracy {dr:.3f} [{low:.3f}, {high:.3f}] vs {model_dr:.3f} at "
                 f"{layer.baseline:g}: {'OPE gate passed' if passed else 'not proven better'}"
                 if dr is not None else reason)
        lines.append(f"{genre}: threshold {threshold:.2f} (model {layer.baseline:g}), drawn by {share:.0%} of users, "
                     f"{requests} labelled requests; {proof}")
    if not moved_only:
        events = con.execute("SELECT analysed_at, event, reason FROM experiments.policy_layer_history WHERE "
                             "layer_id = ? AND event != 'learned' ORDER BY analysed_at", [layer.layer_id]).fetchall()
        lines += [f"{at:%Y-%m-%d %H:%M} {event}: {reason}" for at, event, reason in events]
    return lines


def _last_event_at(con: duckdb.DuckDBPyConnection, layer: Layer) -> datetime:
    return con.execute("SELECT max(analysed_at) FROM experiments.policy_layer_history WHERE layer_id = ? AND event "
                       "IN ('started', 'reset', 'rebased')", [layer.layer_id]).fetchall()[0][0]

"""The serving path without a web framework: which model answers a user, its genres, and what gets logged.

The FastAPI app (``trending_assets/api``) and the in-process traffic simulator both call a ``Router``, so a
simulated day exercises exactly the code that serves real requests. The router reads two files the Dagster
``serving`` assets publish (the deployment plan and the catalog it ranks) and writes one: the event log in the
landing zone's feedback folder. It never opens the DuckDB warehouse.

A new plan is used only once every model it routes to has loaded with a matching checksum; until then, or when
the file is corrupt, the last good plan keeps serving and ``health()`` says why. Shadow models score the same
movies on a background thread after the response is built; their genres and latencies are logged, never
returned.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from trending_assets.lib import assignment, genre_model, serving_policy, serving_ranking, watched_file
from trending_assets.lib.deployment_plan import DeploymentPlan, PlanError, PlanWatcher
from trending_assets.lib.serving_log import EventLog

log = logging.getLogger(__name__)
# What a client may report through POST /feedback; exposures, shadow predictions and alerts are the platform's.
FEEDBACK_TYPES = ("impression", "click", "view", "rating", "thumbs_up", "thumbs_down", "genre_correction")
RETRY_S = 10.0
CATALOG_COLUMNS = ("movie_id", "title", "overview", "release_year", "popularity", "vote_average", "vote_count",
                   "runtime_minutes", "language", "source")


@dataclass(frozen=True)
class Scored:
    """One model's answer for some movies: 0/1 genres and probabilities, columns in ``genres`` order."""

    genres: tuple[str, ...]
    labels: np.ndarray
    probs: np.ndarray

    def names(self, row: int) -> list[str]:
        return [g for g, on in zip(self.genres, self.labels[row]) if on]

    def scores(self, row: int) -> dict[str, float]:
        return {g: round(float(p), 4) for g, p in zip(self.genres, self.probs[row])}

    def take(self, rows: list[int]) -> "Scored":
        """The answer for these rows only, in this order."""
        return Scored(self.genres, self.labels[rows], self.probs[rows])


class _CatalogState:
    """One catalog file's movies and each model's genres and vibes for them: swapped whole on reload, so a
    request that took a state never pairs one file's movies with another's genres."""

    def __init__(self, frame: pl.DataFrame | None):
        self.frame = frame
        self.scored: dict[str, Scored] = {}
        self.vibes: dict[tuple[str, str], list[dict]] = {}
        self.rows = {movie: row for row, movie in enumerate(frame["movie_id"].to_list())} if frame is not None else {}

    def genres_by(self, version: str, model) -> Scored:
        if version not in self.scored:
            self.scored[version] = _score(model, self.frame)
        return self.scored[version]

    def vibes_by(self, generator: str, version: str, scored: Scored) -> list[dict]:
        """Vibe tags and a summary per catalog movie, from ``generator`` over the model's genres (cached)."""
        if (generator, version) not in self.vibes:
            from trending_assets.lib import vibe_tags

            texts = [vibe_tags.MovieText(row["movie_id"], row["title"], row["overview"] or "", tuple(scored.names(i)))
                     for i, row in enumerate(self.frame.select("movie_id", "title", "overview").iter_rows(named=True))]
            self.vibes[(generator, version)] = [{"tags": list(v.tags), "summary": v.summary}
                                                for v in vibe_tags.generator_for(generator).generate(texts)]
        return self.vibes[(generator, version)]


class _Catalog:
    """The movies ``/trending`` ranks (by popularity), re-read when the file changes."""

    def __init__(self, path: Path):
        self.path, self.stamp, self.state = path, None, _CatalogState(None)

    def refresh(self) -> bool:
        """Re-read the file if it changed; True when it did."""
        stamp = watched_file.new_stamp(self.path, self.stamp)
        if stamp is None:
            return False
        frame = pl.read_parquet(self.path).sort("popularity", descending=True, nulls_last=True)
        self.stamp, self.state = stamp, _CatalogState(frame)
        return True


def _score(model, frame: pl.DataFrame) -> Scored:
    probs, labels = genre_model.predict_labels(model, frame)
    return Scored(tuple(model.genres), labels, probs)


def movie_frame(movies: list[dict]) -> pl.DataFrame:
    """A request's movies as the frame the models score (missing metadata becomes null, which they accept)."""
    rows = [{name: movie.get(name) for name in CATALOG_COLUMNS} for movie in movies]
    schema = {"movie_id": pl.String, "title": pl.String, "overview": pl.String, "release_year": pl.Int64,
              "popularity": pl.Float64, "vote_average": pl.Float64, "vote_count": pl.Int64,
              "runtime_minutes": pl.Int64, "language": pl.String, "source": pl.String}
    return pl.DataFrame(rows, schema=schema)


class Router:
    """Routes each request by the active deployment plan; see the module docstring."""

    def __init__(self, plan_path: Path, catalog_path: Path, events: EventLog, device: str = "cpu",
                 shadow_workers: int = 1, clock: Callable[[], datetime] | None = None,
                 profiles_path: Path | None = None, layer_path: Path | None = None):
        # the traffic simulator passes the simulated day's clock; the API uses the wall clock
        self.clock = clock or (lambda: datetime.now(UTC))
        self.watcher = PlanWatcher(plan_path)
        self.catalog = _Catalog(catalog_path)
        self.events, self.device = events, device
        self.plan: DeploymentPlan | None = None
        self.models: dict[str, genre_model.GenreModel] = {}
        self.load_error: str | None = None
        self._refused: tuple[str | None, float] = (None, 0.0)
        self.started = time.time()
        self.requests = self.errors = 0
        # users' genre profiles for personalised rankers: published beside the catalog unless named
        self.profiles = serving_ranking.Profiles(profiles_path or catalog_path.with_name("user_profiles.parquet"))
        # the genre-threshold policy layer for champion-served users (serving/genre_thresholds)
        self.layer = serving_policy.PublishedLayer(layer_path or catalog_path.with_name("genre_thresholds.json"))
        self._lock = threading.Lock()
        self._shadows = ThreadPoolExecutor(max_workers=shadow_workers, thread_name_prefix="shadow")
        self.refresh()

    # -- plan and catalog ------------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Pick up a new plan (all of its models loaded) and catalog; True when the plan changed."""
        if self.watcher.poll():
            self._refused = (None, 0.0)  # a new file: try it at once, even if it carries a refused plan again
        candidate = self.watcher.current
        changed = False
        if candidate is not None and self.plan is not None and candidate.plan_id == self.plan.plan_id:
            self.load_error = None  # the served plan was republished (e.g. after a refused one): nothing is wrong
        elif candidate is not None and self._retry_due(candidate.plan_id):
            try:
                models = self._load_models(candidate)
            except Exception as error:  # a missing or changed artifact: keep serving the last good plan
                message = f"plan {candidate.plan_id} not used: {error}"
                if message != self.load_error:  # once per problem, not once per poll
                    log.error("%s; still serving plan %s", message, self.plan.plan_id if self.plan else None)
                self.load_error, self._refused = message, (candidate.plan_id, time.monotonic())
            else:
                with self._lock:
                    self.plan, self.models, self.load_error = candidate, models, None
                changed = True
                log.info("serving plan %s: champion %s, canary %s, shadows %s, experiments %s", candidate.plan_id,
                         candidate.champion, candidate.canary.version_id if candidate.canary else None,
                         ", ".join(candidate.shadows) or None,
                         ", ".join(e.experiment_id for e in candidate.experiments) or None)
        if self.catalog.refresh() or changed:
            self._warm_up()
        self.profiles.refresh()
        self.layer.refresh()
        return changed

    def _warm_up(self) -> None:
        """Score the catalog with every routed model now, so no user's request pays for it (a first request with
        a cold model took 60 ms instead of 0.3 and alone broke a canary's p99 latency guardrail)."""
        state = self.catalog.state
        if state.frame is not None:
            for version, model in self.models.items():
                state.genres_by(version, model)

    def _retry_due(self, plan_id: str) -> bool:
        """A refused plan file is retried every ``RETRY_S`` (an artifact may still be being copied), not every poll."""
        refused_id, at = self._refused
        return plan_id != refused_id or time.monotonic() - at >= RETRY_S

    def _load_models(self, plan: DeploymentPlan) -> dict[str, genre_model.GenreModel]:
        from trending_assets.lib.registry import artifact_sha256

        models = {}
        for version_id, ref in plan.models.items():
            if version_id in self.models and self.plan and self.plan.models.get(version_id) == ref:
                models[version_id] = self.models[version_id]
                continue
            path = Path(ref.artifact_path)
            if not path.exists():
                raise PlanError(f"model {version_id}: artifact {path} is missing")
            if artifact_sha256(path) != ref.artifact_sha256:
                raise PlanError(f"model {version_id}: artifact {path} does not match its sha256 in the plan")
            models[version_id] = genre_model.load(ref.family, path, device=self.device)
        return models

    def health(self) -> dict:
        plan = self.plan
        errors = [e for e in (self.watcher.last_error, self.load_error) if e]
        return {
            "status": "ok" if plan is not None and not errors else ("degraded" if plan is not None else "no_plan"),
            "plan_id": plan.plan_id if plan else None,
            "champion": plan.champion if plan else None,
            "canary": {"version": plan.canary.version_id, "percent": plan.canary.percent}
            if plan and plan.canary else None,
            "shadows": list(plan.shadows) if plan else [],
            "experiments": [e.experiment_id for e in plan.experiments] if plan else [],
            "plan_error": "; ".join(errors) or None,
            "policy_layer": self.layer.health(),
            "catalog_movies": self.catalog.state.frame.height if self.catalog.state.frame is not None else 0,
            "requests": self.requests,
            "errors": self.errors,
            "events_logged": self.events.written,
            "uptime_s": round(time.time() - self.started, 1),
        }

    def _active(self) -> DeploymentPlan:
        if self.plan is None:
            raise NoPlanError(self.watcher.last_error or self.load_error
                              or f"no deployment plan at {self.watcher.path}; materialize serving/deployment_plan")
        return self.plan

    # -- requests --------------------------------------------------------------------------------------------

    def predict(self, user_id: str, movies: list[dict], surface: str = "predict") -> dict:
        """Genres for the request's movies from the model assigned to ``user_id``."""
        started = time.perf_counter()
        plan = self._active()
        chosen = assignment.assign_model(plan, user_id)
        frame = movie_frame(movies)
        scored = self._run(lambda: _score(self.models[chosen.model_version], frame), chosen, user_id, surface)
        items = [{"movie_id": frame["movie_id"][i], "genres": scored.names(i), "scores": scored.scores(i)}
                 for i in range(frame.height)]
        return self._respond(plan, chosen, user_id, surface, frame, scored, items, started)

    def trending(self, user_id: str, limit: int = 10) -> dict:
        """Catalog movies for ``user_id``, most popular first unless a ranking experiment orders them, each with the
        genres of the model assigned to the user."""
        started = time.perf_counter()
        plan = self._active()
        catalog = self.catalog.state
        if catalog.frame is None:
            raise NoPlanError(f"no serving catalog at {self.catalog.path}; materialize serving/catalog")
        chosen = assignment.assign_model(plan, user_id)
        model = self.models[chosen.model_version]
        every = self._run(lambda: catalog.genres_by(chosen.model_version, model), chosen, user_id, "trending")
        request_id = uuid.uuid4().hex
        ranked = serving_ranking.rank(plan, user_id, limit, catalog, every, self.profiles.of(user_id),
                                      chosen.model_version, request_id)
        frame, scored = catalog.frame[ranked.rows], every.take(ranked.rows)
        extra = [] if ranked.exposure is None else [(ranked.exposure, ranked.payload)]
        shown = scored
        if chosen.role == "champion" and chosen.experiment_id is None:  # outside every model experiment
            choice = self.layer.choice_for(chosen.model_version, every.genres, user_id, self._now()[:10])
            if choice is not None:
                shown = Scored(scored.genres, choice.labels(scored.probs), scored.probs)
                extra.append((assignment.Assignment(chosen.model_version, "policy", choice.layer_id),
                              choice.payload()))
        items = [{"movie_id": frame["movie_id"][i], "title": frame["title"][i], "rank": i + 1,
                  "genres": shown.names(i)} for i in range(frame.height)]
        tagged = assignment.assign_variant(plan, "vibe_tags", user_id)
        if tagged is not None:
            experiment, variant = tagged
            vibes = catalog.vibes_by(variant.generator, chosen.model_version, every)
            for i, item in enumerate(items):
                item["vibe"] = vibes[ranked.rows[i]]
            extra.append((assignment.Assignment(chosen.model_version, "experiment", experiment.experiment_id,
                                                variant.name), {"surface": "vibe_tags", "generator": variant.generator}))
        return self._respond(plan, chosen, user_id, "trending", frame, scored, items, started, extra,
                             (catalog, ranked.rows), ranked.position_payloads(), request_id)

    def _run(self, score, chosen: assignment.Assignment, user_id: str, surface: str) -> Scored:
        self.requests += 1
        try:
            return score()
        except Exception as error:
            self.errors += 1
            self.events.write([_event("exposure", user_id, None, chosen, {
                "request_id": uuid.uuid4().hex, "surface": surface, "status": "error",
                "error": f"{type(error).__name__}: {error}"}, self._now())])
            raise

    def _respond(self, plan, chosen, user_id, surface, frame, scored, items, started, extra=(), catalog=None,
                 positions=None, request_id=None) -> dict:
        request_id = request_id or uuid.uuid4().hex
        latency_ms = (time.perf_counter() - started) * 1000
        now = self._now()
        events = [_event("exposure", user_id, None, chosen, {
            "request_id": request_id, "surface": surface, "status": "ok", "role": chosen.role,
            "latency_ms": round(latency_ms, 3), "plan_id": plan.plan_id, "movies": frame.height}, now)]
        events += [_event("impression", user_id, item["movie_id"], chosen, {
            "request_id": request_id, "surface": surface, "position": i + 1, "genres": item["genres"],
            **(positions[i] if positions else {})}, now)
            for i, item in enumerate(items)]
        # other experiments this response took part in (a vibe-tag test): one exposure each
        events += [_event("exposure", user_id, None, other, {"request_id": request_id, "status": "ok", **payload}, now)
                   for other, payload in extra]
        self.events.write(events)
        shadows = [v for v in plan.shadows if v != chosen.model_version]
        if shadows:
            self._shadows.submit(self._shadow, shadows, user_id, surface, frame, scored, request_id, now, catalog)
        return {"request_id": request_id, "user_id": user_id, "model_version": chosen.model_version,
                "experiment_id": chosen.experiment_id, "variant": chosen.variant, "items": items}

    def _shadow(self, shadows, user_id, surface, frame, served: Scored, request_id, now: str, catalog) -> None:
        events = []
        for version in shadows:
            started = time.perf_counter()
            payload = {"request_id": request_id, "surface": surface, "shadow_version": version}
            try:
                model = self.models[version]
                scored = (catalog[0].genres_by(version, model).take(catalog[1]) if surface == "trending"
                          else _score(model, frame))
                payload.update(status="ok", genres=[scored.names(i) for i in range(frame.height)],
                               served_genres=[served.names(i) for i in range(frame.height)])
            except Exception as error:  # a shadow's failure must never reach the user; it is measured instead
                payload.update(status="error", error=f"{type(error).__name__}: {error}")
            payload["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
            chosen = assignment.Assignment(version, "shadow")
            events.append(_event("shadow_prediction", user_id, None, chosen, payload, now))
        self.events.write(events)

    def feedback(self, events: list[dict]) -> int:
        """Log client feedback, stamped with the user's model and variant when the client did not echo them."""
        plan = self._active()
        rows = []
        for event in events:
            if event.get("model_version") is None:
                chosen = assignment.assign_model(plan, event["user_id"])
                event = {**event, "model_version": chosen.model_version, "experiment_id": chosen.experiment_id,
                         "variant": chosen.variant}
            rows.append({**event, "occurred_at": event.get("occurred_at") or self._now()})
        self.events.write(rows)
        return len(rows)

    def _now(self) -> str:
        return self.clock().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def close(self) -> None:
        self._shadows.shutdown(wait=True)
        self.events.close()


class NoPlanError(RuntimeError):
    """Nothing to serve yet (no valid plan or catalog); the API answers 503 with this message."""


def _event(event_type: str, user_id: str, movie_id: str | None, chosen: assignment.Assignment, payload: dict,
           occurred_at: str) -> dict:
    return {"event_id": f"s{os.getpid():x}-{uuid.uuid4().hex[:20]}", "user_id": user_id, "movie_id": movie_id,
            "event_type": event_type, "value": None, "payload": json.dumps(payload, separators=(",", ":")),
            "model_version": chosen.model_version, "experiment_id": chosen.experiment_id,
            "variant": chosen.variant, "occurred_at": occurred_at}

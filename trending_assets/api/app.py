"""The serving API: a thin FastAPI layer over ``lib.serving.Router``.

Everything it decides (who gets which model, what is logged) lives in the router; this module turns HTTP into
router calls, validates payloads (422 names the bad field), guards the admin endpoints with a bearer token from
``TRENDING_ADMIN_TOKEN``, and re-reads the deployment plan every ``reload_interval_s`` seconds.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from trending_assets.lib.home import TrendingHome
from trending_assets.lib.serving import FEEDBACK_TYPES, NoPlanError, Router
from trending_assets.lib.serving_log import EventLog, recover

log = logging.getLogger("trending.api")
TOKEN_ENV = "TRENDING_ADMIN_TOKEN"
_USER = r"^[A-Za-z0-9_.:@-]{1,128}$"


class Movie(BaseModel):
    model_config = ConfigDict(extra="forbid")
    movie_id: str = Field(min_length=1, max_length=128)
    title: str = Field(min_length=1, max_length=500)
    overview: str | None = Field(default=None, max_length=20_000)
    release_year: int | None = Field(default=None, ge=1870, le=2100)
    popularity: float | None = Field(default=None, ge=0)
    vote_average: float | None = Field(default=None, ge=0, le=10)
    vote_count: int | None = Field(default=None, ge=0)
    runtime_minutes: int | None = Field(default=None, ge=0, le=10_000)
    language: str | None = Field(default=None, max_length=16)
    source: str | None = Field(default=None, max_length=64)


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(pattern=_USER)
    movies: list[Movie] = Field(min_length=1, max_length=256)


class FeedbackEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(pattern=_USER)
    movie_id: str | None = Field(default=None, max_length=128)
    event_type: Literal[FEEDBACK_TYPES]  # type: ignore[valid-type]
    value: float | None = None
    payload: dict[str, Any] | None = None
    model_version: str | None = None
    experiment_id: str | None = None
    variant: str | None = None
    occurred_at: datetime | None = None

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("occurred_at needs a time zone, e.g. 2026-11-26T12:00:00Z")
        return value


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[FeedbackEvent] = Field(min_length=1, max_length=1000)


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=3, max_length=500)
    target: Literal["canary", "champion"] = "canary"


def create_app(home: TrendingHome | None = None, reload_interval_s: float = 1.0, router: Router | None = None) -> FastAPI:
    """The app, serving ``home``'s plan and catalog and logging to its landing zone."""
    home = home or TrendingHome.from_env()
    if router is None:
        feedback = home.landing_dir("feedback")
        feedback.mkdir(parents=True, exist_ok=True)
        recover(feedback)
        router = Router(home.deployment_plan, home.serving_catalog, EventLog(feedback))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async def reload_loop():
            while True:
                await asyncio.sleep(reload_interval_s)
                await asyncio.to_thread(router.refresh)
                router.events.maybe_rotate()

        task = asyncio.create_task(reload_loop())
        yield
        task.cancel()
        router.close()

    app = FastAPI(title="Trending Now serving API", version="1", lifespan=lifespan,
                  description="Genres and trending lists from the deployment plan's models; every response is "
                              "logged as an exposure in the landing zone.")
    app.state.router = router

    def admin(authorization: Annotated[str | None, Header()] = None) -> None:
        expected = os.environ.get(TOKEN_ENV)
        if not expected:
            raise HTTPException(503, f"admin endpoints are off: set {TOKEN_ENV} in the server's environment")
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise HTTPException(401, "missing or wrong bearer token (header: Authorization: Bearer <token>)")

    def served(call):
        try:
            return call()
        except NoPlanError as error:
            raise HTTPException(503, str(error)) from None

    # The request handlers are async: the router's work is a fraction of a millisecond of CPU (shadows run on
    # their own thread), so running it on the event loop skips the threadpool hop that cost more than the work.
    @app.get("/health")
    async def health() -> dict:
        return router.health()

    @app.post("/predict/genres")
    async def predict_genres(request: PredictRequest) -> dict:
        """Genres (with scores) for each movie, from the model the plan assigns to ``user_id``."""
        return served(lambda: router.predict(request.user_id, [m.model_dump() for m in request.movies]))

    @app.get("/trending")
    async def trending(user_id: Annotated[str, Query(pattern=_USER)],
                 limit: Annotated[int, Query(ge=1, le=100)] = 10) -> dict:
        """The trending list for ``user_id``, each movie with the genres of the user's model."""
        return served(lambda: router.trending(user_id, limit))

    @app.post("/feedback", status_code=202)
    async def feedback(request: FeedbackRequest) -> dict:
        """Clicks, views, ratings, thumbs and genre corrections; stamped with the user's model if not echoed."""
        events = []
        for event in request.events:
            row = event.model_dump()
            row["payload"] = json.dumps(row["payload"]) if row["payload"] is not None else None
            when = row.pop("occurred_at")
            row["occurred_at"] = when.astimezone(UTC).isoformat().replace("+00:00", "Z") if when else None
            row["event_id"] = f"f-{uuid.uuid4().hex}"
            events.append(row)
        return {"accepted": served(lambda: router.feedback(events))}

    @app.post("/admin/reload", dependencies=[Depends(admin)])
    def reload() -> dict:
        """Re-read the deployment plan now instead of at the next poll."""
        changed = router.refresh()
        return {"changed": changed, **router.health()}

    @app.post("/admin/rollback", status_code=202, dependencies=[Depends(admin)])
    def rollback(request: RollbackRequest) -> dict:
        """Ask the platform to roll back the canary or the champion; the rollback sensor moves the alias and
        publishes a new plan within one tick."""
        requests = home.serving_requests
        requests.mkdir(parents=True, exist_ok=True)
        request_id = f"rollback-{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}"
        body = {"request_id": request_id, "target": request.target, "reason": request.reason,
                "requested_at": datetime.now(UTC).isoformat(), "plan_id": router.health()["plan_id"]}
        temp = requests / f".{request_id}.json"
        temp.write_text(json.dumps(body))
        temp.replace(requests / f"{request_id}.json")
        log.warning("rollback of the %s requested: %s", request.target, request.reason)
        return body

    return app


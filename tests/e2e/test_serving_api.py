"""The serving API over real HTTP: a uvicorn server on a free port, two tiny XGBoost models trained on simulated
movies, and the plan, catalog and event log in a temp TrendingHome.

One server serves the whole module; each test publishes the plan it needs (``Stack.serve``) and waits until the
server's own reload loop has picked it up. The event log rotates after half a second (the app's default is 30 s),
so the tests read the published ``serving_*.jsonl`` files as the ingestion would.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import httpx
import polars as pl
import pytest
import uvicorn

from trending_assets.api.app import TOKEN_ENV, create_app
from trending_assets.lib import assignment, deployment_plan, serving_catalog
from trending_assets.lib.contracts import EVENT_TYPES, FEEDBACK
from trending_assets.lib.deployment_plan import Canary, DeploymentPlan, ModelRef
from trending_assets.lib.features import FeatureSpec
from trending_assets.lib.home import TrendingHome
from trending_assets.lib.ingest import parse_file
from trending_assets.lib.landing import scan
from trending_assets.lib.registry import artifact_sha256
from trending_assets.lib.serving import CATALOG_COLUMNS, Router
from trending_assets.lib.serving_log import EventLog
from trending_assets.lib.simulator.catalog import serving_frame
from trending_assets.lib.simulator.world import World
from trending_assets.lib.xgb_trainer import XGBConfig, train_stateless

TOKEN = f"admin-{uuid.uuid4().hex}"
CHAMPION, CHALLENGER = "xgb-a", "xgb-b"
# Different genres, data and seeds, so a response's scores tell which model really answered.
GENRES = {CHAMPION: ("drama", "comedy", "action", "thriller", "romance", "horror", "science_fiction", "animation"),
          CHALLENGER: ("drama", "comedy", "action", "horror")}
LOG_AGE_S = 0.5  # the event log publishes a file this old at the next reload tick (every 0.2 s)


def simulated_movies(count: int, seed: int) -> pl.DataFrame:
    """One simulated day's movies with the catalog columns and their listed genres."""
    world = World(scenario="stable", seed=seed, drift_start=date(2026, 3, 1), movies_per_day=count, users=10)
    return serving_frame(world, date(2026, 1, 5))


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Stack:
    home: TrendingHome
    client: httpx.Client
    refs: dict[str, ModelRef]
    catalog: pl.DataFrame

    def plan(self, champion: str = CHAMPION, **options) -> DeploymentPlan:
        return deployment_plan.build(champion, {v: self.refs[v] for v in self.refs if not v.startswith("bad")},
                                     **options)

    def health(self) -> dict:
        return self.client.get("/health").json()

    def serve(self, plan: DeploymentPlan) -> None:
        """Publish ``plan`` and wait until the server's reload loop serves it."""
        deployment_plan.publish(plan, self.home.deployment_plan)
        wait_for(lambda: self.health()["plan_id"] == plan.plan_id, 5, f"plan {plan.plan_id}")

    def predict(self, user_id: str, movies: list[dict] | None = None) -> dict:
        movies = movies or [{"movie_id": "m-x", "title": "The Haunted House", "overview": "a ghost story"}]
        response = self.client.post("/predict/genres", json={"user_id": user_id, "movies": movies})
        assert response.status_code == 200, response.text
        return response.json()

    def events(self) -> list[dict]:
        """Every event in the published (visible) serving log files."""
        lines = []
        for path in sorted(self.home.landing_dir("feedback").glob("serving_*.jsonl")):
            lines += [json.loads(line) for line in path.read_text().splitlines()]
        return lines

    def logged(self, request_ids: set[str], event_type: str = "exposure") -> list[dict]:
        """The published events of ``event_type`` for these requests, once all of them are published."""
        def found():
            events = [e for e in self.events() if e["event_type"] == event_type
                      and json.loads(e["payload"]).get("request_id") in request_ids]
            return events if {json.loads(e["payload"])["request_id"] for e in events} == request_ids else None
        return wait_for(found, 5, f"{event_type} events of {len(request_ids)} requests")


def start_server(app) -> tuple[uvicorn.Server, threading.Thread, str]:
    """uvicorn on a socket bound here (no race for the port), in a thread; log_config=None lets caplog see its logs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    def answers():
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False
    wait_for(answers, 15, "the server's /health")
    return server, thread, url


def stop_server(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(timeout=15)
    assert not thread.is_alive(), "the server did not stop"


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("serving-api")
    home = TrendingHome(root / "home").ensure()
    refs = {}
    for version, seed in ((CHAMPION, 1), (CHALLENGER, 2)):
        config = XGBConfig(n_rounds=5, max_depth=3, eta=0.3, seed=seed, nthread=1,
                           features=FeatureSpec(n_hash_features=2**10))
        folder = home.models / version
        train_stateless(simulated_movies(200, seed), config, GENRES[version]).save(folder)
        refs[version] = ModelRef(version, "xgboost", str(folder), artifact_sha256(folder))
    # the champion's files under another name and a wrong checksum: a plan that must be refused
    refs["bad-sha"] = ModelRef("bad-sha", "xgboost", refs[CHAMPION].artifact_path, "0" * 64)
    catalog = simulated_movies(40, seed=7).select(*CATALOG_COLUMNS)
    serving_catalog.publish(catalog, home.serving_catalog)
    deployment_plan.publish(deployment_plan.build(CHAMPION, {CHAMPION: refs[CHAMPION]}), home.deployment_plan)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TOKEN_ENV, TOKEN)
        events = EventLog(home.landing_dir("feedback"), max_age_s=LOG_AGE_S)
        router = Router(home.deployment_plan, home.serving_catalog, events)
        server, thread, url = start_server(create_app(home, reload_interval_s=0.2, router=router))
        try:
            with httpx.Client(base_url=url, timeout=10) as client:
                yield Stack(home, client, refs, catalog.sort("popularity", descending=True))
        finally:
            stop_server(server, thread)


def test_health_and_openapi_describe_the_service(stack):
    plan = stack.plan()
    stack.serve(plan)
    health = stack.health()
    assert health["status"] == "ok" and health["plan_error"] is None
    assert health["plan_id"] == plan.plan_id and health["champion"] == CHAMPION
    assert health["catalog_movies"] == stack.catalog.height
    paths = stack.client.get("/openapi.json").json()["paths"]
    assert {"/predict/genres", "/trending", "/feedback", "/health"} <= set(paths)
    assert "post" in paths["/predict/genres"] and "get" in paths["/trending"] and "post" in paths["/feedback"]


def test_predict_returns_genres_and_scores_per_movie_from_a_sticky_model(stack):
    stack.serve(stack.plan())
    movies = [{"movie_id": f"m{i}", "title": title, "overview": overview, "release_year": 2020}
              for i, (title, overview) in enumerate([("Night Shift", "a ghost haunts the old hospital"),
                                                     ("First Love", "two strangers fall in love in paris"),
                                                     ("Boom", None)])]
    answer = stack.predict("user-1", movies)
    assert answer["user_id"] == "user-1" and answer["model_version"] == CHAMPION
    assert answer["experiment_id"] is None and answer["variant"] is None
    assert [item["movie_id"] for item in answer["items"]] == ["m0", "m1", "m2"]
    for item in answer["items"]:
        assert set(item["scores"]) == set(GENRES[CHAMPION])
        assert all(0 <= score <= 1 for score in item["scores"].values())
        assert item["genres"] and set(item["genres"]) <= set(GENRES[CHAMPION])
    again = [stack.predict("user-1", movies)["model_version"] for _ in range(3)]
    assert again == [CHAMPION] * 3


def test_a_canary_at_50_percent_splits_users_as_the_assignment_says_and_sticks(stack):
    plan = stack.plan(canary=Canary("canary-b", CHALLENGER, 50, "salt-canary"))
    stack.serve(plan)
    seen = {}
    for i in range(200):
        user = f"u{i}"
        answer = stack.predict(user)
        expected = assignment.assign_model(plan, user)
        assert (answer["model_version"], answer["experiment_id"], answer["variant"]) == (
            expected.model_version, "canary-b", expected.variant)
        # the scores come from the model the label names, not just the label
        assert set(answer["items"][0]["scores"]) == set(GENRES[expected.model_version])
        seen[user] = answer["model_version"]
    counts = {v: list(seen.values()).count(v) for v in (CHAMPION, CHALLENGER)}
    assert 60 <= counts[CHALLENGER] <= 140 and counts[CHAMPION] + counts[CHALLENGER] == 200
    for user in list(seen)[:20]:
        assert stack.predict(user)["model_version"] == seen[user]


def test_trending_ranks_the_most_popular_movies_with_the_users_genres(stack):
    stack.serve(stack.plan())
    response = stack.client.get("/trending", params={"user_id": "user-2", "limit": 5})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model_version"] == CHAMPION
    assert [item["rank"] for item in answer["items"]] == [1, 2, 3, 4, 5]
    assert [item["movie_id"] for item in answer["items"]] == stack.catalog["movie_id"].head(5).to_list()
    assert [item["title"] for item in answer["items"]] == stack.catalog["title"].head(5).to_list()
    assert all(item["genres"] and set(item["genres"]) <= set(GENRES[CHAMPION]) for item in answer["items"])


def test_a_vibe_tag_test_tags_the_list_by_the_users_variant_and_logs_its_own_exposure(stack):
    from trending_assets.lib.deployment_plan import Experiment, Variant

    test = Experiment("vibe-tags", "vibe_tags", "vibe-salt", 100.0, (
        Variant("genre_moods_v2", 0.5, generator="genre_moods_v2"), Variant("moods_v1", 0.5, generator="moods_v1")))
    plan = stack.plan(experiments=(test,))
    stack.serve(plan)
    generators, request_ids = {}, set()
    for i in range(60):
        answer = stack.client.get("/trending", params={"user_id": f"vibe-{i}", "limit": 3}).json()
        request_ids.add(answer["request_id"])
        expected = assignment.assign_variant(plan, "vibe_tags", f"vibe-{i}")[1].generator
        assert all(item["vibe"]["tags"] and isinstance(item["vibe"]["summary"], str) for item in answer["items"])
        generators.setdefault(expected, []).append(answer["items"][0]["vibe"]["tags"])
        assert answer["experiment_id"] is None  # the model assignment is untouched by the tag test
    assert set(generators) == {"genre_moods_v2", "moods_v1"}
    exposures = [e for e in stack.logged(request_ids) if e["experiment_id"] == "vibe-tags"]
    assert len(exposures) == 60
    for event in exposures:
        assert event["variant"] == assignment.assign_variant(plan, "vibe_tags", event["user_id"])[1].name
        assert json.loads(event["payload"])["generator"] == event["variant"]


MOVIE = {"movie_id": "m1", "title": "Title"}


@pytest.mark.parametrize(("method", "path", "request_args", "loc", "error"), [
    ("POST", "/predict/genres", {"json": {"user_id": "u1", "movies": [{"movie_id": "m1"}]}},
     ["body", "movies", 0, "title"], "missing"),
    ("POST", "/predict/genres", {"json": {"user_id": "u1", "movies": [{**MOVIE, "colour": "red"}]}},
     ["body", "movies", 0, "colour"], "extra_forbidden"),
    ("POST", "/predict/genres", {"json": {"user_id": "u1", "movies": [MOVIE], "debug": True}},
     ["body", "debug"], "extra_forbidden"),
    ("POST", "/predict/genres", {"json": {"user_id": "u1", "movies": []}}, ["body", "movies"], "too_short"),
    ("POST", "/predict/genres", {"json": {"user_id": "bad user", "movies": [MOVIE]}},
     ["body", "user_id"], "string_pattern_mismatch"),
    ("GET", "/trending", {"params": {"user_id": "bad user"}}, ["query", "user_id"], "string_pattern_mismatch"),
    ("GET", "/trending", {"params": {"user_id": "u1", "limit": 0}}, ["query", "limit"], "greater_than_equal"),
    ("POST", "/feedback", {"json": {"events": [{"user_id": "u1", "event_type": "purchase"}]}},
     ["body", "events", 0, "event_type"], "literal_error"),
    ("POST", "/feedback", {"json": {"events": [{"user_id": "u1", "event_type": "click",
                                                "occurred_at": "2026-01-05T12:00:00"}]}},
     ["body", "events", 0, "occurred_at"], "value_error"),
])
def test_bad_payloads_are_refused_with_422_naming_the_field(stack, method, path, request_args, loc, error):
    response = stack.client.request(method, path, **request_args)
    assert response.status_code == 422, response.text
    details = response.json()["detail"]
    assert [(d["loc"], d["type"]) for d in details] == [(loc, error)]
    assert details[0]["msg"]


def test_feedback_is_accepted_and_stamped_with_the_users_model(stack):
    plan = stack.plan(canary=Canary("canary-b", CHALLENGER, 50, "salt-canary"))
    stack.serve(plan)
    canary_user = next(u for u in (f"fb-{i}" for i in range(100))
                       if assignment.assign_model(plan, u).model_version == CHALLENGER)
    response = stack.client.post("/feedback", json={"events": [
        {"user_id": canary_user, "movie_id": "m1", "event_type": "click", "payload": {"marker": canary_user}},
        {"user_id": canary_user, "movie_id": "m2", "event_type": "rating", "value": 4.5, "model_version": "client-v",
         "payload": {"marker": canary_user}, "occurred_at": "2026-01-05T12:00:00+01:00"}]})
    assert response.status_code == 202 and response.json() == {"accepted": 2}

    def mine():
        events = [e for e in stack.events() if e["user_id"] == canary_user]
        return events if len(events) == 2 else None
    click, rating = sorted(wait_for(mine, 5, "the two feedback events"), key=lambda e: e["event_type"])
    assert (click["model_version"], click["experiment_id"], click["variant"]) == (CHALLENGER, "canary-b", "canary")
    assert rating["model_version"] == "client-v" and rating["variant"] is None  # echoed by the client: kept
    assert rating["occurred_at"] == "2026-01-05T11:00:00Z" and rating["value"] == 4.5
    assert json.loads(click["payload"]) == {"marker": canary_user}
    assert click["event_id"].startswith("f-") and click["event_id"] != rating["event_id"]


def _valid_against_the_feedback_contract(paths: list[Path]) -> None:
    """Every line of the files passes the ingestion's own validation of the FEEDBACK contract."""
    landed = [f for f in scan(paths[0].parent)[0] if f.path in paths]
    assert len(landed) == len(paths)
    with duckdb.connect() as con:
        for file in landed:
            parsed = parse_file(con, FEEDBACK, file, datetime.now(UTC).replace(tzinfo=None))
            rejected = con.execute(f"SELECT line_number, reason FROM {parsed} WHERE reason IS NOT NULL").fetchall()
            assert rejected == [], f"{file.path.name}: {rejected[:3]}"


def test_every_request_is_logged_as_one_exposure_and_an_impression_per_item(stack):
    plan = stack.plan(canary=Canary("canary-b", CHALLENGER, 50, "salt-canary"))
    stack.serve(plan)
    answers = [stack.predict(f"exp-{i}", [{"movie_id": f"m{j}", "title": f"Movie {j}"} for j in range(3)])
               for i in range(4)]
    answers += [stack.client.get("/trending", params={"user_id": f"exp-t{i}", "limit": 4}).json() for i in range(4)]
    by_request = {a["request_id"]: a for a in answers}
    exposures = stack.logged(set(by_request))
    assert len(exposures) == len(answers)
    for event in exposures:
        payload = json.loads(event["payload"])
        answer = by_request[payload["request_id"]]
        expected = assignment.assign_model(plan, event["user_id"])
        assert event["user_id"] == answer["user_id"] and event["movie_id"] is None
        assert (event["model_version"], event["experiment_id"], event["variant"]) == (
            answer["model_version"], answer["experiment_id"], answer["variant"])
        assert event["model_version"] == expected.model_version and payload["role"] == expected.role
        assert payload["status"] == "ok" and payload["plan_id"] == plan.plan_id
        assert isinstance(payload["latency_ms"], float) and 0 < payload["latency_ms"] < 5000
        assert payload["surface"] == ("trending" if event["user_id"].startswith("exp-t") else "predict")
        assert datetime.fromisoformat(event["occurred_at"]).tzinfo is not None
    impressions = stack.logged(set(by_request), "impression")
    assert len(impressions) == sum(len(a["items"]) for a in answers)
    for event in impressions:
        payload = json.loads(event["payload"])
        item = by_request[payload["request_id"]]["items"][payload["position"] - 1]
        assert event["movie_id"] == item["movie_id"] and payload["genres"] == item["genres"]
        assert event["model_version"] == by_request[payload["request_id"]]["model_version"]

    files = sorted(stack.home.landing_dir("feedback").glob("serving_*.jsonl"))
    for path in files:
        for line in path.read_text().splitlines():
            event = json.loads(line)
            assert set(event) == set(FEEDBACK.field_names)
            assert event["event_type"] in EVENT_TYPES and event["user_id"]
    _valid_against_the_feedback_contract(files)


def test_shadow_models_are_logged_and_never_served(stack):
    stack.serve(stack.plan(shadows=(CHALLENGER,)))
    answers = [stack.predict(f"sh-{i}", [{"movie_id": f"m{j}", "title": f"Movie {j}"} for j in range(2)])
               for i in range(5)]
    answers += [stack.client.get("/trending", params={"user_id": f"sh-t{i}", "limit": 3}).json() for i in range(5)]
    for answer in answers:
        assert answer["model_version"] == CHAMPION
        assert CHALLENGER not in json.dumps(answer)
        assert all(set(item["genres"]) <= set(GENRES[CHAMPION]) for item in answer["items"])
    shadows = stack.logged({a["request_id"] for a in answers}, "shadow_prediction")
    assert len(shadows) == len(answers)
    by_request = {a["request_id"]: a for a in answers}
    for event in shadows:
        payload = json.loads(event["payload"])
        answer = by_request[payload["request_id"]]
        assert event["model_version"] == payload["shadow_version"] == CHALLENGER
        assert event["user_id"] == answer["user_id"] and payload["status"] == "ok"
        assert isinstance(payload["latency_ms"], float) and payload["latency_ms"] >= 0
        assert len(payload["genres"]) == len(answer["items"])
        assert all(set(genres) <= set(GENRES[CHALLENGER]) for genres in payload["genres"])
        assert payload["served_genres"] == [item["genres"] for item in answer["items"]]


def test_a_new_plan_is_picked_up_within_two_seconds(stack):
    stack.serve(stack.plan())
    assert stack.predict("hot-1")["model_version"] == CHAMPION
    swapped = stack.plan(CHALLENGER)
    started = time.monotonic()
    deployment_plan.publish(swapped, stack.home.deployment_plan)
    wait_for(lambda: stack.health()["plan_id"] == swapped.plan_id, 2, "the new plan on /health")
    assert time.monotonic() - started < 2
    assert stack.health()["champion"] == CHALLENGER and stack.health()["status"] == "ok"
    answer = stack.predict("hot-1")
    assert answer["model_version"] == CHALLENGER and set(answer["items"][0]["scores"]) == set(GENRES[CHALLENGER])


def _degraded(stack: Stack) -> dict | None:
    health = stack.health()
    return health if health["status"] == "degraded" else None


def test_a_corrupt_plan_file_keeps_the_last_good_plan_serving(stack):
    good = stack.plan()
    stack.serve(good)
    text = stack.home.deployment_plan.read_text()
    stack.home.deployment_plan.write_text(text[: len(text) // 2])
    health = wait_for(lambda: _degraded(stack), 3, "status degraded")
    assert health["plan_id"] == good.plan_id
    assert str(stack.home.deployment_plan) in health["plan_error"] and "not valid JSON" in health["plan_error"]
    assert stack.predict("corrupt-1")["model_version"] == CHAMPION

    deployment_plan.publish(good, stack.home.deployment_plan)
    wait_for(lambda: stack.health()["status"] == "ok", 3, "status ok after the good plan is back")
    assert stack.health()["plan_error"] is None


def test_a_plan_whose_artifact_does_not_match_its_checksum_is_not_used(stack):
    good = stack.plan()
    stack.serve(good)
    bad = deployment_plan.build("bad-sha", {"bad-sha": stack.refs["bad-sha"]})
    deployment_plan.publish(bad, stack.home.deployment_plan)
    health = wait_for(lambda: _degraded(stack), 3, "status degraded")
    assert health["plan_id"] == good.plan_id and health["champion"] == CHAMPION
    assert "model bad-sha" in health["plan_error"] and "sha256" in health["plan_error"]
    assert stack.predict("sha-1")["model_version"] == CHAMPION

    fixed = stack.plan(CHALLENGER)  # a different good plan; republishing `good` itself: see the next test
    deployment_plan.publish(fixed, stack.home.deployment_plan)
    wait_for(lambda: stack.health()["status"] == "ok", 3, "status ok after a good plan")
    assert stack.health()["plan_id"] == fixed.plan_id and stack.health()["plan_error"] is None


# Republishing the plan that is still serving (the natural undo of a bad publish) must clear the refused plan's
# error, or /health would stay "degraded" for good.
def test_republishing_the_serving_plan_after_a_refused_one_clears_the_error(stack):
    good = stack.plan()
    stack.serve(good)
    try:
        deployment_plan.publish(deployment_plan.build("bad-sha", {"bad-sha": stack.refs["bad-sha"]}),
                                stack.home.deployment_plan)
        wait_for(lambda: _degraded(stack), 3, "status degraded")
        deployment_plan.publish(good, stack.home.deployment_plan)
        wait_for(lambda: stack.health()["status"] == "ok", 2, "status ok after the serving plan is republished")
    finally:
        stack.serve(stack.plan(CHALLENGER))  # a different plan clears the error for the tests that follow


def test_admin_endpoints_need_the_token_and_never_log_it(stack, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    plan = stack.plan()
    stack.serve(plan)
    assert stack.client.post("/admin/reload").status_code == 401
    assert stack.client.post("/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert stack.client.post("/admin/rollback", json={"reason": "no token"}).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    reloaded = stack.client.post("/admin/reload", headers=auth)
    assert reloaded.status_code == 200 and reloaded.json()["plan_id"] == plan.plan_id
    assert reloaded.json()["changed"] is False

    response = stack.client.post("/admin/rollback", headers=auth,
                                 json={"reason": "click rate fell by half", "target": "champion"})
    assert response.status_code == 202, response.text
    written = list(stack.home.serving_requests.glob("rollback-*.json"))
    assert [p.name for p in written] == [f"{response.json()['request_id']}.json"]  # only the authorised one
    request = json.loads(written[0].read_text())
    assert request["target"] == "champion" and request["reason"] == "click rate fell by half"
    assert request["plan_id"] == plan.plan_id
    bad = stack.client.post("/admin/rollback", headers=auth, json={"reason": "x", "target": "everything"})
    assert bad.status_code == 422 and {tuple(d["loc"]) for d in bad.json()["detail"]} == {
        ("body", "reason"), ("body", "target")}

    monkeypatch.delenv(TOKEN_ENV)
    off = stack.client.post("/admin/reload", headers=auth)
    assert off.status_code == 503 and TOKEN_ENV in off.json()["detail"]

    assert "rollback of the champion requested" in caplog.text  # the server's logs are captured here
    assert TOKEN not in caplog.text
    leaked = [p for p in stack.home.root.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert leaked == []


def test_shutting_down_publishes_the_event_log(stack, tmp_path):
    """The app's own router (default 30 s rotation): nothing is visible while it runs, everything after."""
    home = TrendingHome(tmp_path / "home").ensure()
    deployment_plan.publish(stack.plan(), home.deployment_plan)
    serving_catalog.publish(stack.catalog, home.serving_catalog)
    server, thread, url = start_server(create_app(home, reload_interval_s=0.2))
    try:
        ids = {httpx.get(f"{url}/trending", params={"user_id": f"sd-{i}", "limit": 2}).json()["request_id"]
               for i in range(3)}
        assert not list(home.landing_dir("feedback").glob("*.jsonl"))
    finally:
        stop_server(server, thread)
    files = list(home.landing_dir("feedback").glob("serving_*.jsonl"))
    events = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    assert {json.loads(e["payload"])["request_id"] for e in events if e["event_type"] == "exposure"} == ids
    assert not [p for p in os.listdir(home.landing_dir("feedback")) if p.endswith(".part")]


def _publish_layer(stack: Stack, model_version: str, at: float | None, active: bool = True) -> None:
    """A genre-threshold layer file in which every genre of the champion draws threshold ``at``."""
    from trending_assets.lib.policy_layer import DEFAULT_THRESHOLDS

    distribution = [1.0 if t == at else 0.0 for t in DEFAULT_THRESHOLDS]
    payload = {"layer_id": "genre-thresholds", "model_version": model_version, "salt": "genre-thresholds",
               "baseline": 0.5, "thresholds": list(DEFAULT_THRESHOLDS), "epoch": "2026-01-01T00:00:00",
               "active": active, "genres": {g: distribution for g in GENRES[CHAMPION]},
               "published_at": uuid.uuid4().hex}
    from trending_assets.lib.atomic_file import write_json

    write_json(stack.home.genre_thresholds, payload)
    wait_for(lambda: (stack.health()["policy_layer"] or {}).get("published_at") == payload["published_at"], 5,
             "the policy layer file")


def test_the_policy_layer_thresholds_the_champions_genres_for_champion_served_users_only(stack):
    stack.serve(stack.plan())
    rows = stack.catalog.head(8).to_dicts()
    scores = {item["movie_id"]: item["scores"] for item in stack.predict("layer-0", rows)["items"]}

    def shown(user: str) -> tuple[dict, dict[str, list[str]]]:
        answer = stack.client.get("/trending", params={"user_id": user, "limit": 8}).json()
        return answer, {item["movie_id"]: item["genres"] for item in answer["items"]}

    def at(threshold: float) -> dict[str, set[str]]:  # a score within rounding of the threshold decides nothing
        return {m: {g for g, s in by.items() if s >= threshold} for m, by in scores.items()}

    model_own = shown("layer-1")[1]  # before any layer: the model's own threshold
    try:
        _publish_layer(stack, CHAMPION, 0.7)
        answer, genres = shown("layer-1")
        for movie, names in genres.items():
            assert set(names) == at(0.7)[movie], movie
        assert any(set(model_own[m]) != at(0.7)[m] for m in genres)  # the layer really changed what is shown
        payload = json.loads(next(e for e in stack.logged({answer["request_id"]})
                                  if e["experiment_id"] == "genre-thresholds")["payload"])
        assert payload["genres"] == list(GENRES[CHAMPION])
        assert payload["thresholds"] == [0.7] * len(GENRES[CHAMPION])
        assert payload["propensities"] == [1.0] * len(GENRES[CHAMPION])

        _publish_layer(stack, CHAMPION, 0.2)  # a new file is picked up: lower thresholds show more genres
        assert all(set(names) == at(0.2)[m] for m, names in shown("layer-1")[1].items())

        _publish_layer(stack, CHALLENGER, 0.7)  # a layer for another model is not applied, and health says why
        assert shown("layer-1")[1] == model_own
        assert CHALLENGER in stack.health()["policy_layer"]["not_applied"]

        _publish_layer(stack, CHAMPION, 0.7)
        plan = stack.plan(canary=Canary("canary-b", CHALLENGER, 50, "salt-canary"))
        stack.serve(plan)  # during a canary the control arm is not thresholded: the comparison stays fair
        request_ids = set()
        for i in range(10):
            answer, genres = shown(f"layer-canary-{i}")
            request_ids.add(answer["request_id"])
            if answer["model_version"] == CHAMPION:
                assert genres == {m: model_own[m] for m in genres}
        assert not [e for e in stack.logged(request_ids) if e["experiment_id"] == "genre-thresholds"]
    finally:
        _publish_layer(stack, CHAMPION, 0.7, active=False)

"""Serving benchmark: the real API under load over HTTP, and the router's own cost in-process, for three plans.

    .venv/bin/python bench/serve.py                          # 20k requests per plan, 32 in flight
    .venv/bin/python bench/serve.py --requests 2000 --router-calls 500     # smoke run

Setup (not timed): a temp TRENDING_HOME with three XGBoost genre models trained on simulated movies (a champion, a
canary and a shadow), a 500-movie catalog of simulated movies (the size ``serving/catalog`` publishes) and a
deployment plan. Three plans are measured side by side in one run:

* champion: the champion serves everyone;
* rollout: the champion, a canary at 25% and a shadow model scoring every request in the background;
* personalised: the champion with the policy layer (every user draws a threshold per genre, logged in a second
  exposure) and ``genre_taste`` as the production ranker (profiles for every bench user), the per-request work the
  ranker candidates and the layer add to ``/trending``.

For each plan the server is a separate process (``uvicorn.run(create_app(TrendingHome.from_env()))``, one worker,
on 127.0.0.1, the app's defaults), so the load generator does not share its GIL. The load generator is asyncio and
``httpx.AsyncClient`` with at most ``--concurrency`` requests in flight: ``--requests`` requests after
``--warmup`` unmeasured ones, ``GET /trending?user_id=u<i>&limit=10``, and a ``--predict-share`` of
``POST /predict/genres`` with 5 movies. Latency is client-side (send to full response). Server and client CPU
seconds over the measured phase are printed, since on a small machine the client can be the bottleneck; the
server's CPU milliseconds per request give the ceiling of one worker on one idle core. After the load the server
is stopped with SIGINT (it publishes its event log on shutdown) and the logged exposures and shadow predictions
are counted against the requests sent.

The router overhead is ``Router.trending(user, 10)`` called directly in this process (no HTTP, real event log
writes, shadows on their background thread), ``--router-calls`` calls after a warm-up, one user each.

Targets (from the issue): router p99 <= 5 ms in-process; >= 1000 req/s end to end; no non-2xx response. Exit
status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import httpx
import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

from trending_assets.lib import deployment_plan, genre_model, policy_layer_store, serving_catalog  # noqa: E402
from trending_assets.lib.policy_layer import DEFAULT_THRESHOLDS  # noqa: E402
from trending_assets.lib.deployment_plan import Canary, DeploymentPlan, ModelRef  # noqa: E402
from trending_assets.lib.home import TrendingHome  # noqa: E402
from trending_assets.lib.registry import artifact_sha256  # noqa: E402
from trending_assets.lib.serving import CATALOG_COLUMNS, Router  # noqa: E402
from trending_assets.lib.serving_log import EventLog  # noqa: E402
from trending_assets.lib.simulator.catalog import serving_frame  # noqa: E402
from trending_assets.lib.simulator.world import World  # noqa: E402
from trending_assets.lib.xgb_trainer import XGBConfig, train_stateless  # noqa: E402

ROUTER_P99_TARGET_MS = 5.0
THROUGHPUT_TARGET = 1000.0
CATALOG_MOVIES = 500
TRAINING_MOVIES = 1000
MODELS = {"champion": 1, "canary": 2, "shadow": 3}  # version -> training seed
PERSONALISED = "champion + layer + genre_taste"
LAYER_ID = policy_layer_store.LAYER_ID
SERVER = ("import uvicorn; from trending_assets.api.app import create_app; "
          "from trending_assets.lib.home import TrendingHome; "
          "uvicorn.run(create_app(TrendingHome.from_env()), host='127.0.0.1', port={port}, log_level='warning', "
          "access_log=False)")


def simulated_movies(count: int, seed: int) -> pl.DataFrame:
    """One simulated day's movies: the catalog columns and the genres the source lists."""
    world = World(scenario="stable", seed=seed, drift_start=date(2026, 3, 1), movies_per_day=count, users=10)
    return serving_frame(world, date(2026, 1, 5))


def build_home(root: Path) -> tuple[TrendingHome, dict[str, DeploymentPlan]]:
    """The home with models and catalog, and the two plans to measure (not yet published)."""
    home = TrendingHome(root).ensure()
    refs = {}
    for version, seed in MODELS.items():
        config = XGBConfig(n_rounds=50, max_depth=6, seed=seed, nthread=1)
        folder = home.models / version
        train_stateless(simulated_movies(TRAINING_MOVIES, seed), config).save(folder)
        refs[version] = ModelRef(version, "xgboost", str(folder), artifact_sha256(folder))
    serving_catalog.publish(simulated_movies(CATALOG_MOVIES, seed=7).select(*CATALOG_COLUMNS), home.serving_catalog)
    plans = {
        "champion only": deployment_plan.build("champion", {"champion": refs["champion"]}),
        "champion + shadow + canary 25%": deployment_plan.build(
            "champion", refs, shadows=("shadow",), canary=Canary("canary-bench", "canary", 25, "salt-bench")),
        PERSONALISED: deployment_plan.build("champion", {"champion": refs["champion"]}, ranker="genre_taste"),
    }
    genres = list(genre_model.load("xgboost", refs["champion"].artifact_path).genres)
    rng = np.random.default_rng(5)  # a profile over three genres for each bench user (u<i>, w<i>, r<i>)
    users = [f"{p}{i}" for p in "uwr" for i in range(30_000)]
    picks = [rng.choice(genres, size=3, replace=False) for _ in users]
    serving_catalog.publish(pl.DataFrame({"user_id": np.repeat(users, 3), "genre": np.concatenate(picks),
                                          "weight": 1 / 3}), home.user_profiles)
    return home, plans


def publish_layer(home: TrendingHome, active: bool) -> None:
    """The policy layer at its prior (uniform over the thresholds) for the champion, or stopped."""
    genres = list(genre_model.load("xgboost", home.models / "champion").genres)
    layer = policy_layer_store.Layer(LAYER_ID, "champion", genres, 0.5, list(DEFAULT_THRESHOLDS), 0.1, 20,
                                     "running" if active else "stopped", datetime(2026, 1, 1))
    policy_layer_store.publish(layer, home.genre_thresholds)


@dataclass
class Load:
    seconds: float
    latencies_ms: dict[str, list[float]]  # per endpoint
    statuses: dict[int | str, int]  # HTTP status, or "transport error (...)" for a dropped connection
    client_cpu_s: float
    server_cpu_s: float

    @property
    def count(self) -> int:
        return sum(self.statuses.values())

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not (isinstance(status, int) and 200 <= status < 300))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_cpu() -> float:
    times = os.times()
    return times.user + times.system


PREDICT_MOVIES = [{"movie_id": f"p{j}", "title": f"Movie {j}", "overview": "a ghost haunts a lonely detective",
                   "release_year": 2024, "popularity": 3.5, "language": "en"} for j in range(5)]


async def generate(url: str, first: int, requests: int, concurrency: int, predict_share: float, seed: int,
                   server_pid: int) -> Load:
    """``requests`` requests with at most ``concurrency`` in flight; users ``u<first>`` onwards."""
    rng = np.random.default_rng(seed)
    predict = rng.random(requests) < predict_share
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    latencies: dict[str, list[float]] = {"/trending": [], "/predict/genres": []}
    statuses: dict[int | str, int] = {}

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        async def one(i: int) -> None:
            user = f"u{first + i}"
            async with gate:
                started = time.perf_counter()
                path = "/predict/genres" if predict[i] else "/trending"
                try:
                    if predict[i]:
                        response = await client.post(path, json={"user_id": user, "movies": PREDICT_MOVIES})
                    else:
                        response = await client.get(path, params={"user_id": user, "limit": 10})
                    status = response.status_code
                except httpx.TransportError as error:  # a dropped connection is a failed request, not a crash
                    status = f"transport error ({type(error).__name__})"
                latencies[path].append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1

        cpu, server_cpu, started = _process_cpu(), _cpu_seconds(server_pid), time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(requests)))
        seconds = time.perf_counter() - started
        return Load(seconds, latencies, statuses, _process_cpu() - cpu, _cpu_seconds(server_pid) - server_cpu)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: TrendingHome) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "TRENDING_HOME": str(home.root)}
    process = subprocess.Popen([sys.executable, "-c", SERVER.format(port=port)], env=env, cwd=ROOT,
                               start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {process.stdout.read()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).json()["status"] == "ok":
                return process, url
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.1)
    stop_server(process)
    raise RuntimeError("the server did not answer /health within 60 s")


def stop_server(process: subprocess.Popen) -> float:
    """SIGINT to its process group (uvicorn shuts down gracefully, the app publishes its log); seconds it took."""
    started = time.perf_counter()
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return time.perf_counter() - started


def logged_events(folder: Path) -> dict[str, int]:
    """Events by type; the policy layer's exposures (one per champion request beside the request's) apart."""
    counts: dict[str, int] = {}
    for path in folder.glob("serving_*.jsonl"):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            kind = "layer_exposure" if event["experiment_id"] == LAYER_ID else event["event_type"]
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def router_overhead(home: TrendingHome, calls: int, warmup: int, log_folder: Path) -> list[float]:
    """Milliseconds per ``Router.trending(user, 10)`` call in this process, after ``warmup`` calls."""
    router = Router(home.deployment_plan, home.serving_catalog, EventLog(log_folder))
    try:
        for i in range(warmup):
            router.trending(f"w{i}", 10)
        times = []
        for i in range(calls):
            started = time.perf_counter()
            router.trending(f"r{i}", 10)
            times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        router.close()


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass
class Result:
    name: str
    load: Load
    router_ms: list[float]
    events: dict[str, int]
    sent: int  # requests sent to the server, warm-up included
    shutdown_s: float


def measure(home: TrendingHome, name: str, plan: DeploymentPlan, args, root: Path) -> Result:
    deployment_plan.publish(plan, home.deployment_plan)
    publish_layer(home, active=name == PERSONALISED)
    feedback = home.landing_dir("feedback")
    for old in feedback.glob("serving_*.jsonl"):
        old.unlink()
    process, url = start_server(home)
    try:
        asyncio.run(generate(url, 10_000_000, args.warmup, args.concurrency, args.predict_share, 1, process.pid))
        load = asyncio.run(generate(url, 0, args.requests, args.concurrency, args.predict_share, 0, process.pid))
    finally:
        shutdown_s = stop_server(process)
    router_ms = router_overhead(home, args.router_calls, args.router_warmup, root / f"inproc-{plan.plan_id}")
    return Result(name, load, router_ms, logged_events(feedback), args.warmup + args.requests, shutdown_s)


def report(results: list[Result]) -> bool:
    print(f"\n{'plan':<32} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'client CPU':>11} "
          f"{'server CPU':>11} | {'router p50':>10} {'p99 ms':>7}")
    for r in results:
        every = [v for values in r.load.latencies_ms.values() for v in values]
        print(f"{r.name:<32} {r.load.count / r.load.seconds:>8.0f} {pct(every, 50):>8.2f} {pct(every, 99):>8.2f} "
              f"{r.load.non_2xx:>8} {r.load.client_cpu_s / r.load.seconds:>10.0%} "
              f"{r.load.server_cpu_s / r.load.seconds:>10.0%} | {pct(r.router_ms, 50):>10.3f} "
              f"{pct(r.router_ms, 99):>7.3f}")
    print("(CPU: seconds of CPU per wall second over the measured phase; 100% = one core busy)")
    for r in results:
        if r.load.non_2xx:
            print(f"  {r.name}: responses by status {r.load.statuses}")
    for r in results:
        per_request = r.load.server_cpu_s / r.load.count * 1000
        print(f"  {r.name}: server {per_request:.2f} ms CPU per request (one worker, one core: at most "
              f"{1000 / per_request:,.0f} req/s), client {r.load.client_cpu_s / r.load.count * 1000:.2f} ms")

    print(f"\n{'plan':<32} {'endpoint':<16} {'requests':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for r in results:
        for endpoint, values in r.load.latencies_ms.items():
            if values:
                print(f"{r.name:<32} {endpoint:<16} {len(values):>9} {pct(values, 50):>8.2f} {pct(values, 90):>8.2f} "
                      f"{pct(values, 99):>8.2f} {max(values):>8.2f}")

    print("\nlogged by the server (published on shutdown):")
    for r in results:
        shadows = r.events.get("shadow_prediction", 0)
        layer = f", layer exposures {r.events['layer_exposure']}" if "layer_exposure" in r.events else ""
        print(f"  {r.name:<32} exposures {r.events.get('exposure', 0):>6} of {r.sent} requests{layer}, "
              f"impressions {r.events.get('impression', 0):>7}, shadow predictions {shadows:>6}; "
              f"shutdown {r.shutdown_s:.1f} s")

    rows = []
    for r in results:
        throughput, router_p99 = r.load.count / r.load.seconds, pct(r.router_ms, 99)
        rows += [
            (f"{r.name}: router p99 in-process", f"{router_p99:.3f} ms", f"<= {ROUTER_P99_TARGET_MS:g} ms",
             router_p99 <= ROUTER_P99_TARGET_MS),
            (f"{r.name}: throughput end to end", f"{throughput:.0f} req/s", f">= {THROUGHPUT_TARGET:.0f} req/s",
             throughput >= THROUGHPUT_TARGET),
            (f"{r.name}: non-2xx responses", f"{r.load.non_2xx} of {r.load.count}", "0", r.load.non_2xx == 0),
            (f"{r.name}: exposures logged", f"{r.events.get('exposure', 0)} of {r.sent}", "= requests sent",
             r.events.get("exposure", 0) == r.sent),
        ]
    print(f"\n{'check':<58} {'measured':>18}  {'target':<16} verdict")
    for check, measured, target, passed in rows:
        print(f"{check:<58} {measured:>18}  {target:<16} {'PASS' if passed else 'FAIL'}")
    return all(passed for *_, passed in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="measured requests per plan")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight at most")
    parser.add_argument("--warmup", type=int, default=500, help="unmeasured requests per plan before the load")
    parser.add_argument("--predict-share", type=float, default=0.1,
                        help="share of POST /predict/genres (5 movies); the rest GET /trending?limit=10")
    parser.add_argument("--router-calls", type=int, default=5000, help="timed in-process Router.trending calls")
    parser.add_argument("--router-warmup", type=int, default=200)
    args = parser.parse_args(argv)

    import fastapi
    import uvicorn
    import xgboost

    versions = describe(fastapi=fastapi.__version__, uvicorn=uvicorn.__version__, httpx=httpx.__version__,
                        xgboost=xgboost.__version__)
    print(f"machine: {versions}")
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{args.requests:,} requests per plan after {args.warmup} warm-up, {args.concurrency} in flight, "
          f"{args.predict_share:.0%} POST /predict/genres (5 movies), the rest GET /trending?limit=10; "
          f"one uvicorn worker in its own process; router: {args.router_calls:,} in-process calls")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        root = Path(tmp)
        home, plans = build_home(root / "home")
        print(f"setup: {len(MODELS)} models (50 rounds, depth 6, {TRAINING_MOVIES} simulated movies each), "
              f"{CATALOG_MOVIES}-movie catalog, {time.perf_counter() - started:.1f} s")
        results = [measure(home, name, plan, args, root) for name, plan in plans.items()]
    passed = report(results)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

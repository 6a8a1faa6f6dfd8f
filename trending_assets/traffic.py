"""`trending simulate-traffic`: the simulated audience browsing the serving API, day by day.

Two ways to reach the API, with the same router code behind both:
- ``--url http://127.0.0.1:8000``: real HTTP against a running ``trending serve`` (events stamped with the wall
  clock, as production would);
- default, in-process: the same ``Router`` the API uses, built here on the home's plan and catalog, with a clock
  set to the simulated day, so a demo can run many simulated days in minutes. It writes to the same landing
  folder with the same event log, so ingestion cannot tell the two apart.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from trending_assets.lib.home import TrendingHome
from trending_assets.lib.simulator import traffic

DEFAULT_USERS = 3000


def run_days(home: TrendingHome, start: date, days: int, users: int = DEFAULT_USERS, url: str | None = None,
             seed: int = 0, echo: Callable[[str], None] = print) -> list[traffic.DayTraffic]:
    """Simulate ``days`` days of traffic from ``start``; one line per day."""
    audience = traffic.Audience.load(home, users, seed)
    results = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        result = _over_http(url, audience, day, users, seed) if url else _in_process(home, audience, day, users, seed)
        echo(f"traffic {day}: {result.requests} requests from {result.users} users ({result.errors} errors); "
             + ", ".join(f"{k} {v}" for k, v in sorted(result.events.items())))
        results.append(result)
    return results


def _in_process(home: TrendingHome, audience: traffic.Audience, day: date, users: int,
                seed: int) -> traffic.DayTraffic:
    from trending_assets.lib.serving import Router
    from trending_assets.lib.serving_log import EventLog

    moment = [datetime(day.year, day.month, day.day, tzinfo=UTC)]
    router = Router(home.deployment_plan, home.serving_catalog, EventLog(home.landing_dir("feedback")),
                    clock=lambda: moment[0])
    if router.plan is None:
        router.close()
        raise RuntimeError(f"no usable deployment plan at {home.deployment_plan} "
                           f"({router.health()['plan_error']}); materialize serving/deployment_plan first")
    try:
        return traffic.simulate_day(router.trending, lambda events: router.feedback(traffic.payload_json(events)),
                                    audience, day, users, seed, clock=lambda m: moment.__setitem__(0, m))
    finally:
        router.close()


def _over_http(url: str, audience: traffic.Audience, day: date, users: int, seed: int) -> traffic.DayTraffic:
    import httpx

    with httpx.Client(base_url=url.rstrip("/"), timeout=10.0) as client:
        def trending(user_id: str, limit: int) -> dict:
            response = client.get("/trending", params={"user_id": user_id, "limit": limit})
            response.raise_for_status()
            return response.json()

        def feedback(events: list[dict]) -> None:
            # the server stamps its own clock: leave occurred_at out
            body = [{k: v for k, v in e.items() if k != "occurred_at"} for e in events]
            client.post("/feedback", json={"events": body}).raise_for_status()

        return traffic.simulate_day(trending, feedback, audience, day, users, seed)

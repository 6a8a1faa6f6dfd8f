"""Running the world day by day: what lands in the landing zone, and what is recorded as ground truth."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from trending_assets.lib.home import ENTITIES, TrendingHome
from trending_assets.lib.simulator.audience import feedback_events, user_ids, user_tastes
from trending_assets.lib.simulator.catalog import recent_movies, scrape_movies
from trending_assets.lib.simulator.garbage import to_lines
from trending_assets.lib.simulator.reviews import critic_reviews
from trending_assets.lib.simulator.scenarios import check_scenario, describe
from trending_assets.lib.simulator.world import Stream, World
from trending_assets.lib.simulator.writer import (
    landing_path,
    read_world_record,
    update_ground_truth,
    write_lines,
    write_world_record,
)

NOISE_STREAMS = {"movies": Stream.NOISE_MOVIES, "reviews": Stream.NOISE_REVIEWS, "feedback": Stream.NOISE_FEEDBACK}


@dataclass(frozen=True)
class SimulationSummary:
    """What one ``simulate`` call wrote: ``rows`` counts every line, ``garbage`` the broken ones among them."""

    files: list[Path]
    rows: dict[str, int]
    garbage: dict[str, int]
    scenario: str
    seed: int
    start: date
    days: int
    drift_start: date
    ground_truth: Path


def simulate(
    home: TrendingHome,
    start: date,
    days: int,
    scenario: str = "stable",
    seed: int = 0,
    movies_per_day: int = 120,
    users: int = 150,
    noise: float = 0.0,
    drift_start: date | None = None,
) -> SimulationSummary:
    """Simulate ``days`` days from ``start``: one movies, reviews and feedback file per day, plus ground truth.

    Each day's files are a pure function of the world (scenario, seed, drift_start, movies_per_day, users), the
    date and ``noise``, so days can be simulated in any order or split over calls with identical results. A home
    remembers its world in ``ground_truth/scenario.json``: later calls extend it (an omitted ``drift_start``
    is taken from there) and refuse to mix in a different world. ``noise`` replaces that share of lines with
    scraper garbage. Raises ValueError for an unknown scenario or out-of-range parameters.
    """
    _check_parameters(start, days, scenario, seed, movies_per_day, users, noise)
    home.ensure()
    recorded = read_world_record(home)
    world = World(
        scenario=scenario,
        seed=seed,
        drift_start=drift_start or _recorded_drift_start(recorded, scenario, seed) or start + timedelta(days // 2),
        movies_per_day=movies_per_day,
        users=users,
    )
    _check_same_world(home, recorded, world)

    tastes = user_tastes(world)
    seen = {}
    files, rows, garbage = [], dict.fromkeys(ENTITIES, 0), dict.fromkeys(ENTITIES, 0)
    simulated = [start + timedelta(days=offset) for offset in range(days)]
    for day in simulated:
        movies = recent_movies(world, day)
        records = {
            "movies": scrape_movies(world, day),
            "reviews": critic_reviews(world, day, movies),
            "feedback": feedback_events(world, day, tastes, movies),
        }
        referenced = {row["movie_id"] for entity_rows in records.values() for row in entity_rows}
        seen |= {movie.movie_id: movie for movie in movies if movie.movie_id in referenced}
        for entity in ENTITIES:
            lines, bad = to_lines(entity, records[entity], noise, world.rng(NOISE_STREAMS[entity], day))
            files.append(write_lines(landing_path(home, entity, day), lines))
            rows[entity] += len(lines)
            garbage[entity] += bad

    update_ground_truth(home, seen.values(), user_ids(world), tastes)
    write_world_record(home, _world_record(world, recorded, simulated))
    return SimulationSummary(
        files=files,
        rows=rows,
        garbage=garbage,
        scenario=scenario,
        seed=seed,
        start=start,
        days=days,
        drift_start=world.drift_start,
        ground_truth=home.ground_truth,
    )


def _check_parameters(start, days, scenario, seed, movies_per_day, users, noise) -> None:
    check_scenario(scenario)
    if isinstance(start, datetime) or not isinstance(start, date):
        raise TypeError(f"start must be a datetime.date, got {start!r}")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if movies_per_day < 1 or users < 1:
        raise ValueError(f"movies_per_day and users must be at least 1, got {movies_per_day} and {users}")
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise is the share of garbage lines, between 0 and 1; got {noise}")


def _recorded_drift_start(recorded: dict | None, scenario: str, seed: int) -> date | None:
    if recorded is None or (recorded["scenario"], recorded["seed"]) != (scenario, seed):
        return None
    return date.fromisoformat(recorded["drift_start"])


def _world_fields(world: World) -> dict:
    return asdict(world) | {"drift_start": world.drift_start.isoformat()}


def _check_same_world(home: TrendingHome, recorded: dict | None, world: World) -> None:
    """Refuse to write a second world into a home: the same movie ids would mean different movies."""
    if recorded is None:
        return
    wanted = _world_fields(world)
    differ = {name: value for name, value in wanted.items() if recorded.get(name) != value}
    if differ:
        held = {name: recorded.get(name) for name in differ}
        raise ValueError(
            f"{home.root} already holds a simulated world with {held}, but this run asks for {differ}. "
            "Simulate into a fresh TRENDING_HOME, or repeat the recorded values to extend that world."
        )


def _world_record(world: World, recorded: dict | None, simulated: list[date]) -> dict:
    """``scenario.json``: the world's parameters, which days it has covered, and what its scenario changes."""
    covered = sorted({*(recorded or {}).get("simulated_days", []), *(day.isoformat() for day in simulated)})
    return _world_fields(world) | {
        "start": covered[0],
        "end": covered[-1],
        "days": len(covered),
        "simulated_days": covered,
        **describe(world.scenario, world.drift_start),
    }

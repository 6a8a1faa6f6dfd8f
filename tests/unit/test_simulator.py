"""The simulated world: the landing contract, determinism, each scenario's drift, scraper noise, ground truth."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, timedelta
from itertools import combinations
from pathlib import Path

import polars as pl
import pytest

from trending_assets.lib.genres import CANONICAL_GENRES
from trending_assets.lib.home import ENTITIES, TrendingHome
from trending_assets.lib.simulator import SCENARIOS, simulate
from trending_assets.lib.simulator.scenarios import UNIVERSE
from trending_assets.lib.simulator.vocabulary import FILLER, GENRE_WORDS

START = date(2026, 1, 5)
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
EVENT_TYPES = {"impression", "click", "view", "rating", "thumbs_up", "thumbs_down", "genre_correction"}
MOVIE_FIELDS = {
    "movie_id": str, "title": str, "overview": str, "release_date": str, "scraped_at": str, "source": str,
    "popularity": float, "vote_average": (int, float), "vote_count": int, "runtime_minutes": int, "language": str,
}
REVIEW_FIELDS = {
    "review_id": str, "movie_id": str, "text": str, "rating": int, "author": str, "created_at": str, "scraped_at": str,
}
FEEDBACK_FIELDS = {
    "event_id": str, "user_id": str, "movie_id": str, "event_type": str, "value": (int, float, type(None)),
    "payload": (str, type(None)), "model_version": type(None), "experiment_id": type(None),
    "variant": type(None), "occurred_at": str,
}
FIELDS = {"movies": MOVIE_FIELDS, "reviews": REVIEW_FIELDS, "feedback": FEEDBACK_FIELDS}


def problem(entity: str, line: str) -> str | None:
    """Why a landing line breaks the contract, or None when it keeps it."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return "not json"
    fields = FIELDS[entity]
    if entity == "movies" and set(row) - set(fields) - {"genres"}:
        return "unexpected field"
    if entity != "movies" and set(row) != set(fields):
        return "missing or unexpected field"
    for name, kind in fields.items():
        if name not in row:
            return f"missing {name}"
        if not isinstance(row[name], kind) or isinstance(row[name], bool):
            return f"wrong type {name}"
    if entity == "movies":
        if "genres" in row and not set(row["genres"]) <= set(CANONICAL_GENRES):
            return "unknown genre"
        if not 0 <= row["vote_average"] <= 10:
            return "vote_average out of range"
    if entity == "reviews" and not 0 <= row["rating"] <= 10:
        return "rating out of range"
    if entity == "feedback":
        if row["event_type"] not in EVENT_TYPES:
            return "unknown event type"
        if row["event_type"] == "rating" and not 0 <= row["value"] <= 10:
            return "rating out of range"
    return None


def lines(path: Path) -> list[str]:
    data = path.read_bytes()
    assert data.endswith(b"\n") and b"\r" not in data
    return data.decode("utf-8").splitlines()


def rows(home: TrendingHome, entity: str) -> list[dict]:
    return [json.loads(line) for path in sorted(home.landing_dir(entity).iterdir()) for line in lines(path)]


def truth(home: TrendingHome) -> pl.DataFrame:
    return pl.read_parquet(home.ground_truth / "movies.parquet")


def genre_shares(movies: pl.DataFrame, first: date, last: date) -> dict[str, float]:
    """Share of each true genre among the genre labels of movies first seen between first and last."""
    released = movies.filter(pl.col("first_day").is_between(first, last))
    counts = Counter(genre for genres in released["true_genres"] for genre in genres)
    return {genre: counts[genre] / sum(counts.values()) for genre in UNIVERSE}


def distance(a: dict[str, float], b: dict[str, float]) -> float:
    """Total variation distance between two genre mixes."""
    return sum(abs(a[genre] - b[genre]) for genre in UNIVERSE) / 2


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Simulate once per distinct argument set and share the home across tests."""
    homes: dict[tuple, TrendingHome] = {}

    def run(scenario: str, days: int = 14, **options) -> TrendingHome:
        key = (scenario, days, *sorted(options.items()))
        if key not in homes:
            home = TrendingHome(tmp_path_factory.mktemp(scenario))
            simulate(home, options.pop("start", START), days, scenario=scenario, **options)
            homes[key] = home
        return homes[key]

    return run


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_writes_one_contract_file_per_entity_per_day(tmp_path, scenario):
    summary = simulate(TrendingHome(tmp_path), START, 3, scenario=scenario, movies_per_day=40, users=40)
    home = TrendingHome(tmp_path)
    days = [START + timedelta(days=offset) for offset in range(3)]
    expected = {home.landing_dir(entity) / f"{entity}_{day}.jsonl" for entity in ENTITIES for day in days}
    assert set(summary.files) == expected and len(summary.files) == 9
    assert summary.scenario == scenario and summary.drift_start == START + timedelta(days=1)
    for path in summary.files:
        entity, day = path.parent.name, path.stem.split("_")[1]
        for line in lines(path):
            assert problem(entity, line) is None, line
            row = json.loads(line)
            stamps = [value for name, value in row.items() if name.endswith("_at")]
            assert all(TIMESTAMP.match(stamp) and stamp.startswith(day) for stamp in stamps), row
    assert summary.rows == {entity: len(rows(home, entity)) for entity in ENTITIES}
    assert summary.garbage == dict.fromkeys(ENTITIES, 0)


def test_movies_are_rescraped_sometimes_unlabeled_and_corrected_with_their_true_genres(world):
    home = world("stable")
    movies = rows(home, "movies")
    scrapes = Counter(row["movie_id"] for row in movies)
    assert sum(count > 1 for count in scrapes.values()) > 100
    assert 0.02 < sum("genres" not in row for row in movies) / len(movies) < 0.08
    assert {row["source"] for row in movies} == {"tmdb_sim", "imdb_sim"}
    true_genres = dict(truth(home).select("movie_id", "true_genres").iter_rows())
    corrections = [row for row in rows(home, "feedback") if row["event_type"] == "genre_correction"]
    assert corrections
    for row in corrections:
        assert json.loads(row["payload"]) == {"genres": true_genres[row["movie_id"]]}
    assert all(row["value"] is not None for row in rows(home, "feedback") if row["event_type"] == "rating")


def test_scraped_genres_differ_from_the_truth_for_a_small_share(world):
    movies = truth(world("stable"))
    noised = movies.filter(pl.col("label_noised"))
    assert 0.02 < noised.height / movies.height < 0.08
    assert all(set(row["scraped_genres"]) != set(row["true_genres"]) for row in noised.iter_rows(named=True))
    assert 0.02 < movies["scraped_genres"].is_null().mean() < 0.08


def test_the_same_seed_writes_byte_identical_files(tmp_path):
    first, second = TrendingHome(tmp_path / "a"), TrendingHome(tmp_path / "b")
    for home in (first, second):
        simulate(home, START, 3, scenario="seasonal", seed=7, noise=0.05, movies_per_day=50, users=50)
    for path in first.landing.rglob("*.jsonl"):
        assert path.read_bytes() == (second.root / path.relative_to(first.root)).read_bytes()


def test_a_split_run_writes_the_same_days_as_one_run(tmp_path):
    whole, split = TrendingHome(tmp_path / "whole"), TrendingHome(tmp_path / "split")
    options = dict(scenario="genre_shift", seed=3, drift_start=START + timedelta(days=3), movies_per_day=40, users=40)
    simulate(whole, START, 6, **options)
    simulate(split, START, 3, **options)
    simulate(split, START + timedelta(days=3), 3, **options)
    paths = sorted(path.relative_to(whole.root) for path in whole.landing.rglob("*.jsonl"))
    assert paths == sorted(path.relative_to(split.root) for path in split.landing.rglob("*.jsonl"))
    assert all((whole.root / path).read_bytes() == (split.root / path).read_bytes() for path in paths)
    assert truth(whole).equals(truth(split))


def test_a_different_seed_writes_a_different_world(tmp_path):
    homes = [TrendingHome(tmp_path / str(seed)) for seed in (1, 2)]
    for seed, home in enumerate(homes, start=1):
        simulate(home, START, 1, seed=seed, movies_per_day=30, users=30)
    for entity in ENTITIES:
        name = f"{entity}/{entity}_{START}.jsonl"
        assert (homes[0].landing / name).read_bytes() != (homes[1].landing / name).read_bytes()


def test_genre_shift_changes_the_mix_at_drift_start_and_stable_does_not(world):
    drift = START + timedelta(days=7)
    before, after = (START, drift - timedelta(days=1)), (drift, START + timedelta(days=13))
    stable, shifted = truth(world("stable")), truth(world("genre_shift"))
    # Sampling alone moves the mix of ~840 movies by about 0.04; the shift moves it by about 0.22.
    assert distance(genre_shares(stable, *before), genre_shares(stable, *after)) < 0.1
    assert distance(genre_shares(shifted, *before), genre_shares(shifted, *after)) > 0.15
    assert genre_shares(shifted, *after)["horror"] > 2 * genre_shares(shifted, *before)["horror"]


def top_words(home: TrendingHome, genre: str, first: date, last: date, count: int = 20) -> set[str]:
    """The commonest non-filler overview words of movies led by ``genre`` and first scraped in [first, last]."""
    led = set(truth(home).filter(pl.col("true_genres").list.first() == genre)["movie_id"])
    words = Counter()
    for row in rows(home, "movies"):
        if row["movie_id"] in led and first.isoformat() <= row["scraped_at"][:10] <= last.isoformat():
            words.update(word for word in re.findall(r"[a-z]+", row["overview"].lower()) if word not in FILLER)
    return {word for word, _ in words.most_common(count)}


def test_vocabulary_drift_replaces_one_genres_words(world):
    home = world("vocabulary_drift")
    before, after = (START, START + timedelta(days=6)), (START + timedelta(days=7), START + timedelta(days=13))
    drifted = top_words(home, "science_fiction", *before), top_words(home, "science_fiction", *after)
    steady = top_words(home, "drama", *before), top_words(home, "drama", *after)
    assert len(drifted[0] & drifted[1]) / len(drifted[0] | drifted[1]) < 0.3
    assert len(steady[0] & steady[1]) / len(steady[0] | steady[1]) > 0.5
    record = json.loads((home.ground_truth / "scenario.json").read_text())
    assert drifted[1] & set(record["vocabulary_changes"]["science_fiction"]["added"])


def test_new_genre_appears_only_from_drift_start(world):
    home = world("new_genre")
    drift = START + timedelta(days=7)
    movies = truth(home).with_columns(pl.col("true_genres").list.contains("documentary").alias("new"))
    assert movies.filter(pl.col("new"))["first_day"].min() >= drift
    assert movies.filter(pl.col("new") & (pl.col("first_day") >= drift)).height > 50
    early = [row for row in rows(home, "movies") if row["scraped_at"] < str(drift)]
    assert "documentary" not in {genre for row in early for genre in row.get("genres", [])}
    record = json.loads((home.ground_truth / "scenario.json").read_text())
    assert record["new_genre"] == "documentary" and "documentary" not in record["genres_before"]


def test_seasonal_horror_peaks_in_october(world):
    october, april = date(2025, 10, 10), date(2026, 4, 10)
    home = world("seasonal", days=4, start=october)
    simulate(home, april, 4, scenario="seasonal")
    movies = truth(home)
    in_october = genre_shares(movies, october, october + timedelta(days=3))["horror"]
    in_april = genre_shares(movies, april, april + timedelta(days=3))["horror"]
    assert in_october > 2 * in_april


def test_noise_replaces_about_that_share_of_lines_with_garbage(world):
    clean, noisy = world("stable", days=5), world("stable", days=5, noise=0.05)
    for entity in ENTITIES:
        for path in clean.landing_dir(entity).iterdir():
            assert all(problem(entity, line) is None for line in lines(path))
    broken, total = Counter(), 0
    for entity in ENTITIES:
        for path in noisy.landing_dir(entity).iterdir():
            noisy_lines, clean_lines = lines(path), lines(clean.landing_dir(entity) / path.name)
            assert len(noisy_lines) == len(clean_lines)
            total += len(noisy_lines)
            for noisy_line, clean_line in zip(noisy_lines, clean_lines):
                reason = problem(entity, noisy_line)
                assert reason is not None or noisy_line == clean_line
                broken[(reason or "ok").split()[0]] += 1
    share = 1 - broken["ok"] / total
    assert 0.035 < share < 0.065
    assert {"not", "missing", "wrong"} <= set(broken)


def test_garbage_is_counted_in_the_summary(tmp_path):
    summary = simulate(TrendingHome(tmp_path), START, 2, noise=0.2, movies_per_day=40, users=40)
    for entity in ENTITIES:
        paths = [path for path in summary.files if path.parent.name == entity]
        bad = sum(problem(entity, line) is not None for path in paths for line in lines(path))
        assert bad == summary.garbage[entity] > 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(scenario="apocalypse"), r"'apocalypse'.*stable, genre_shift"),
        (dict(days=0), "days must be at least 1"),
        (dict(noise=1.5), "noise"),
        (dict(seed=-1), "seed"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        simulate(TrendingHome(tmp_path), START, **{"days": 1, **arguments})


def test_a_home_holds_one_world(tmp_path):
    home = TrendingHome(tmp_path)
    simulate(home, START, 1, scenario="stable", movies_per_day=20, users=20)
    with pytest.raises(ValueError, match="fresh TRENDING_HOME"):
        simulate(home, START + timedelta(days=1), 1, scenario="genre_shift", movies_per_day=20, users=20)


def test_ground_truth_is_recorded_apart_from_the_landing_files_and_merged_across_runs(tmp_path):
    home = TrendingHome(tmp_path)
    simulate(home, START, 2, scenario="genre_shift", movies_per_day=30, users=20)
    first = truth(home)
    simulate(home, START + timedelta(days=2), 2, scenario="genre_shift", movies_per_day=30, users=20)
    movies = truth(home)
    assert set(first["movie_id"]) < set(movies["movie_id"])
    assert movies.columns == ["movie_id", "first_day", "true_genres", "scraped_genres", "label_noised"]
    users = pl.read_parquet(home.ground_truth / "users.parquet")
    assert users.height == 20 and users.columns == ["user_id", *(f"taste_{genre}" for genre in UNIVERSE)]
    record = json.loads((home.ground_truth / "scenario.json").read_text())
    assert (record["scenario"], record["start"], record["days"]) == ("genre_shift", str(START), 4)
    assert record["drift_start"] == str(START + timedelta(days=1))  # kept from the first run
    landing_text = "".join(path.read_text() for path in home.landing.rglob("*.jsonl"))
    assert "true_genres" not in landing_text and "label_noised" not in landing_text and "taste" not in landing_text
    assert not [path for path in tmp_path.rglob(".*")]


def test_the_world_speaks_canonical_genres_with_distinct_vocabularies():
    assert set(UNIVERSE) <= set(CANONICAL_GENRES)
    for a, b in combinations(GENRE_WORDS.values(), 2):
        assert not set(a) & set(b)
    assert not set(FILLER) & {word for words in GENRE_WORDS.values() for word in words}

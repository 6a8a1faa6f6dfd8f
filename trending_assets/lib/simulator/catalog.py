"""The movie catalogue: which films each day brings, and how the scraper records them.

A movie's id is its release into the world (``m20260105-0042``: the 42nd movie of 5 January), so any day's
catalogue can be rebuilt from the seed alone; that is what lets a later run re-scrape earlier movies. A re-scrape
can reach back before the first simulated day: the scraper simply finds that movie late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
import polars as pl

from trending_assets.lib.simulator.scenarios import UNIVERSE, genre_mix, vocabularies
from trending_assets.lib.simulator.vocabulary import FILLER, TITLE_ADJECTIVES, TITLE_NOUNS
from trending_assets.lib.simulator.world import SECONDS_PER_DAY, Stream, World, timestamp

LOOKBACK_DAYS = 7  # how far back re-scrapes, reviews and impressions reach
RESCRAPE_SHARE = 0.25  # re-scrapes per day, as a share of the new movies
POPULARITY_DECAY = 0.85  # per day since release into the world
UNLABELED_SHARE = 0.05
NOISED_SHARE = 0.05
SIGNAL_SHARE = 0.4  # genre words among an overview's words
GENRE_COUNT_P = (0.5, 0.35, 0.15)  # one, two or three genres
LANGUAGES = ("en", "fr", "es", "ko", "ja", "de", "hi", "it")
LANGUAGE_P = (0.55, 0.08, 0.08, 0.07, 0.07, 0.05, 0.05, 0.05)


@dataclass(frozen=True)
class Movie:
    """A movie as the world knows it; ``scraped_genres`` is what the source lists (None: nothing listed)."""

    movie_id: str
    first_day: date
    title: str
    overview: str
    true_genres: tuple[str, ...]
    scraped_genres: tuple[str, ...] | None
    label_noised: bool
    release_date: date
    source: str
    base_popularity: float
    vote_average: float
    base_votes: int
    runtime_minutes: int
    language: str

    @property
    def mislabeled(self) -> bool:
        """Whether the source's genres are missing or wrong, so a user might correct them."""
        return self.scraped_genres is None or self.label_noised

    def popularity_at(self, day: date) -> float:
        """Interest in the movie on ``day``, fading as it ages."""
        return self.base_popularity * POPULARITY_DECAY ** max((day - self.first_day).days, 0)

    def votes_at(self, day: date) -> int:
        """Votes cast by ``day``, growing as it ages."""
        return self.base_votes + self.base_votes * max((day - self.first_day).days, 0) // 2


@lru_cache(maxsize=64)
def day_catalog(world: World, day: date) -> tuple[Movie, ...]:
    """The movies released into the world on ``day``; a pure function of the world and the date."""
    rng = world.rng(Stream.CATALOG, day)
    count = world.movies_per_day
    mix = genre_mix(world.scenario, day, world.drift_start)
    vocab = vocabularies(world.scenario, day, world.drift_start)
    active = [genre for genre, share in zip(UNIVERSE, mix) if share > 0]
    all_genres = _draw_genres(rng, count, mix)
    label_draw = rng.random(count)
    release_offset = rng.integers(-30, 15, size=count)
    from_tmdb = rng.random(count) < 0.7
    popularity = rng.lognormal(2.5, 0.8, size=count)
    vote_average = np.clip(rng.normal(6.3, 1.2, size=count), 1.0, 9.8).round(1)
    votes = rng.lognormal(4.0, 1.0, size=count).astype(int)
    runtime_offset = rng.normal(0.0, 15.0, size=count)
    language = rng.choice(len(LANGUAGES), size=count, p=LANGUAGE_P)
    movies = []
    for index, true_genres in enumerate(all_genres):
        unlabeled = label_draw[index] < UNLABELED_SHARE
        noised = not unlabeled and label_draw[index] < UNLABELED_SHARE + NOISED_SHARE
        runtime = (85 if "animation" in true_genres else 108) + runtime_offset[index]
        scraped = None if unlabeled else _noised_genres(rng, true_genres, active) if noised else true_genres
        movies.append(
            Movie(
                movie_id=f"m{day:%Y%m%d}-{index:04d}",
                first_day=day,
                title=_title(rng),
                overview=_overview(rng, true_genres, vocab),
                true_genres=true_genres,
                scraped_genres=scraped,
                label_noised=noised,
                release_date=day + timedelta(days=int(release_offset[index])),
                source="tmdb_sim" if from_tmdb[index] else "imdb_sim",
                base_popularity=float(popularity[index]),
                vote_average=float(vote_average[index]),
                base_votes=int(votes[index]),
                runtime_minutes=int(np.clip(runtime, 60, 200)),
                language=LANGUAGES[int(language[index])],
            )
        )
    return tuple(movies)


def recent_movies(world: World, day: date) -> list[Movie]:
    """Today's new movies and those of the last ``LOOKBACK_DAYS`` days: what users and critics can find."""
    days = [day - timedelta(days=back) for back in range(LOOKBACK_DAYS + 1)]
    return [movie for past in days for movie in day_catalog(world, past)]


def scrape_movies(world: World, day: date) -> list[dict]:
    """The day's movie rows in scrape order: every new movie plus re-scrapes of recent ones."""
    rng = world.rng(Stream.SCRAPE, day)
    per_day = world.movies_per_day
    slots = rng.choice(LOOKBACK_DAYS * per_day, size=round(RESCRAPE_SHARE * per_day), replace=False)
    rescraped = [
        day_catalog(world, day - timedelta(days=1 + slot // per_day))[slot % per_day]
        for slot in sorted(map(int, slots))
    ]
    movies = [*day_catalog(world, day), *rescraped]
    seconds = rng.integers(0, SECONDS_PER_DAY, size=len(movies))
    jitter = rng.lognormal(0.0, 0.1, size=len(movies))
    extra_votes = rng.integers(0, 20, size=len(movies))
    rows = [
        (int(sec), _movie_row(movie, day, int(sec), float(j), int(extra)))
        for movie, sec, j, extra in zip(movies, seconds, jitter, extra_votes)
    ]
    rows.sort(key=lambda pair: (pair[0], pair[1]["movie_id"]))
    return [row for _, row in rows]


def _movie_row(movie: Movie, day: date, seconds: int, jitter: float, extra_votes: int) -> dict:
    row: dict = {"movie_id": movie.movie_id, "title": movie.title, "overview": movie.overview}
    if movie.scraped_genres is not None:
        row["genres"] = list(movie.scraped_genres)
    row |= {
        "release_date": movie.release_date.isoformat(),
        "scraped_at": timestamp(day, seconds),
        "source": movie.source,
        "popularity": round(movie.popularity_at(day) * jitter, 3),
        "vote_average": movie.vote_average,
        "vote_count": movie.votes_at(day) + extra_votes,
        "runtime_minutes": movie.runtime_minutes,
        "language": movie.language,
    }
    return row


def _draw_genres(rng, count: int, mix: np.ndarray) -> list[tuple[str, ...]]:
    """One to three distinct genres per movie, weighted by ``mix`` without replacement (Gumbel top-k)."""
    sizes = rng.choice(len(GENRE_COUNT_P), size=count, p=GENRE_COUNT_P) + 1
    with np.errstate(divide="ignore"):
        keys = np.log(mix) + rng.gumbel(size=(count, len(mix)))
    ranked = np.argsort(-keys, axis=1)
    available = int((mix > 0).sum())
    return [tuple(UNIVERSE[int(j)] for j in ranked[i, : min(int(size), available)]) for i, size in enumerate(sizes)]


def _noised_genres(rng, true_genres: tuple[str, ...], active: list[str]) -> tuple[str, ...]:
    """A plausible wrong label: one true genre swapped for another active genre."""
    wrong = [genre for genre in active if genre not in true_genres]
    genres = list(true_genres)
    genres[int(rng.integers(len(genres)))] = wrong[int(rng.integers(len(wrong)))]
    return tuple(genres)


def _title(rng) -> str:
    adjective = TITLE_ADJECTIVES[int(rng.integers(len(TITLE_ADJECTIVES)))]
    noun, other = (TITLE_NOUNS[int(i)] for i in rng.integers(len(TITLE_NOUNS), size=2))
    pattern = int(rng.integers(3))
    return (f"The {adjective} {noun}", f"{noun} of the {adjective} {other}", f"{adjective} {noun}")[pattern]


def _overview(rng, genres: tuple[str, ...], vocab: dict[str, tuple[str, ...]]) -> str:
    """Filler words laced with the genres' signal words, the first genre speaking loudest."""
    length = int(rng.integers(25, 61))
    signal = int(rng.binomial(length, SIGNAL_SHARE))
    weights = np.array([2.0] + [1.0] * (len(genres) - 1))
    per_genre = rng.multinomial(signal, weights / weights.sum())
    words = [FILLER[int(i)] for i in rng.integers(len(FILLER), size=length - signal)]
    for genre, count in zip(genres, per_genre):
        words += [vocab[genre][int(i)] for i in rng.integers(len(vocab[genre]), size=count)]
    words = [words[int(i)] for i in rng.permutation(len(words))]
    sentences, start = [], 0
    while start < len(words):
        end = start + int(rng.integers(7, 15))
        sentences.append(" ".join(words[start:end]).capitalize() + ".")
        start = end
    return " ".join(sentences)


def serving_frame(world: World, day: date) -> pl.DataFrame:
    """The day's new movies as the serving catalog's columns plus the genres the source lists (for tests and
    benchmarks of the serving path, which need scorable movies without a warehouse)."""
    rows = [{"movie_id": m.movie_id, "title": m.title, "overview": m.overview, "release_year": m.release_date.year,
             "popularity": round(m.base_popularity, 3), "vote_average": m.vote_average, "vote_count": m.base_votes,
             "runtime_minutes": m.runtime_minutes, "language": m.language, "source": m.source,
             "genres": list(m.scraped_genres or ())} for m in day_catalog(world, day)]
    return pl.DataFrame(rows, schema_overrides={"genres": pl.List(pl.String)})

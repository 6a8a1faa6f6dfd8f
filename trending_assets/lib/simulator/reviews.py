"""Critics' reviews: words that speak for the movie's true genres and for how much the critic liked it."""

from __future__ import annotations

from datetime import date

import numpy as np

from trending_assets.lib.simulator.catalog import Movie
from trending_assets.lib.simulator.scenarios import vocabularies
from trending_assets.lib.simulator.vocabulary import NEGATIVE_WORDS, POSITIVE_WORDS, REVIEW_FILLER
from trending_assets.lib.simulator.world import SECONDS_PER_DAY, Stream, World, timestamp

REVIEWS_PER_MOVIE = 0.8  # reviews per day, as a share of the day's new movies
CRITICS = 400
GENRE_SHARE = 0.35
SENTIMENT_SHARE = 0.25


def critic_reviews(world: World, day: date, movies: list[Movie]) -> list[dict]:
    """The day's reviews of recent ``movies``, popular ones reviewed more often, in scrape order."""
    rng = world.rng(Stream.REVIEWS, day)
    count = int(rng.poisson(REVIEWS_PER_MOVIE * world.movies_per_day))
    popularity = np.array([movie.popularity_at(day) for movie in movies])
    chosen = rng.choice(len(movies), size=count, p=popularity / popularity.sum())
    vocab = vocabularies(world.scenario, day, world.drift_start)
    created = np.sort(rng.integers(0, SECONDS_PER_DAY - 3600, size=count))
    reviews = []
    for number, (index, created_at) in enumerate(zip(chosen, created)):
        movie = movies[int(index)]
        rating = int(np.clip(round(movie.vote_average + rng.normal(0.0, 1.8)), 0, 10))
        reviews.append({
            "review_id": f"r{day:%Y%m%d}-{number:05d}",
            "movie_id": movie.movie_id,
            "text": _review_text(rng, movie, rating, vocab),
            "rating": rating,
            "author": f"critic{int(rng.integers(CRITICS)):04d}",
            "created_at": timestamp(day, int(created_at)),
            "scraped_at": timestamp(day, int(created_at) + int(rng.integers(60, 3600))),
        })
    return reviews


def _review_text(rng, movie: Movie, rating: int, vocab: dict[str, tuple[str, ...]]) -> str:
    length = int(rng.integers(15, 46))
    parts = rng.multinomial(length, [GENRE_SHARE, SENTIMENT_SHARE, 1 - GENRE_SHARE - SENTIMENT_SHARE])
    genre_count, sentiment_count, filler_count = (int(n) for n in parts)
    words = [_pick(rng, REVIEW_FILLER) for _ in range(filler_count)]
    genres = rng.choice(len(movie.true_genres), size=genre_count)
    words += [_pick(rng, vocab[movie.true_genres[int(g)]]) for g in genres]
    # The better the rating, the more of the sentiment words are praise.
    praise = rng.random(sentiment_count) < rating / 10
    words += [_pick(rng, POSITIVE_WORDS if good else NEGATIVE_WORDS) for good in praise]
    words = [words[int(i)] for i in rng.permutation(len(words))]
    return " ".join(words).capitalize() + "."


def _pick(rng, words: tuple[str, ...]) -> str:
    return words[int(rng.integers(len(words)))]

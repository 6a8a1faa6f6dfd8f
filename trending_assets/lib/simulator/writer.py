"""Writing what the world produced: landing files as a scraper drops them, and the ground truth beside them.

Every file is written to a hidden temporary name in its own folder and then renamed into place, so the file
sensor watching the landing folder never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from trending_assets.lib.home import TrendingHome
from trending_assets.lib.simulator.catalog import Movie
from trending_assets.lib.simulator.scenarios import UNIVERSE

SCENARIO_FILE = "scenario.json"
MOVIES_FILE = "movies.parquet"
USERS_FILE = "users.parquet"


def landing_path(home: TrendingHome, entity: str, day: date) -> Path:
    """``landing/<entity>/<entity>_YYYY-MM-DD.jsonl``."""
    return home.landing_dir(entity) / f"{entity}_{day.isoformat()}.jsonl"


def write_lines(path: Path, lines: list[str]) -> Path:
    """Write JSON Lines (UTF-8, ``\\n`` endings) atomically."""
    _write_atomically(path, "".join(f"{line}\n" for line in lines).encode("utf-8"))
    return path


def read_world_record(home: TrendingHome) -> dict | None:
    """The recorded ``scenario.json`` of the world simulated in ``home``, or None before the first run."""
    path = home.ground_truth / SCENARIO_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def write_world_record(home: TrendingHome, record: dict) -> None:
    """Replace ``scenario.json`` with ``record``."""
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    _write_atomically(home.ground_truth / SCENARIO_FILE, text.encode("utf-8"))


def update_ground_truth(home: TrendingHome, movies: Iterable[Movie], user_ids: list[str], tastes: np.ndarray) -> None:
    """Merge the movies and users seen in this run into ``movies.parquet`` and ``users.parquet``, keyed by id."""
    movies = sorted(movies, key=lambda movie: movie.movie_id)
    movie_frame = pl.DataFrame(
        {
            "movie_id": [movie.movie_id for movie in movies],
            "first_day": [movie.first_day for movie in movies],
            "true_genres": [list(movie.true_genres) for movie in movies],
            "scraped_genres": [
                None if movie.scraped_genres is None else list(movie.scraped_genres) for movie in movies
            ],
            "label_noised": [movie.label_noised for movie in movies],
        },
        schema={
            "movie_id": pl.String,
            "first_day": pl.Date,
            "true_genres": pl.List(pl.String),
            "scraped_genres": pl.List(pl.String),
            "label_noised": pl.Boolean,
        },
    )
    user_frame = pl.DataFrame(
        {"user_id": user_ids} | {f"taste_{genre}": tastes[:, column] for column, genre in enumerate(UNIVERSE)}
    )
    _merge_parquet(home.ground_truth / MOVIES_FILE, movie_frame, "movie_id")
    _merge_parquet(home.ground_truth / USERS_FILE, user_frame, "user_id")


def _merge_parquet(path: Path, fresh: pl.DataFrame, key: str) -> None:
    """Rewrite ``path`` as the union of what it held and ``fresh``, fresh rows winning on the same key."""
    if path.exists():
        fresh = pl.concat([pl.read_parquet(path), fresh], how="diagonal_relaxed").unique(
            subset=key, keep="last", maintain_order=True
        )
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".") as scratch:
        staged = Path(scratch) / path.name
        fresh.sort(key).write_parquet(staged)
        os.replace(staged, path)


def _write_atomically(path: Path, data: bytes) -> None:
    handle, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        # mkstemp makes the file private; landing files should read like any other file.
        os.chmod(staged, 0o644)
        os.replace(staged, path)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise

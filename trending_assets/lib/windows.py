"""Curated training windows: which labeled movies a model trains on, and the content hash that names them.

Time runs on ``first_seen_date``, the day a movie was first scraped. The static test bucket, chosen by a hash
of the movie id, is held out of every window and backtest slice; because membership is a pure function of the
id, no window can ever overlap it, whenever the test set's rows were frozen (see ``window_store``). How rows
are sampled lives in ``sampling.py``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from trending_assets.lib.genres import CANONICAL_GENRES
from trending_assets.lib.sampling import SAMPLING_METHODS, sample, unit_hash

STRATEGIES: tuple[str, ...] = ("sliding", "all_history", "recent_plus_sample")
STATIC_TEST_FRACTION = 0.15
STATIC_TEST_SALT = "static-test-v1"
REQUIRED_COLUMNS: tuple[str, ...] = ("movie_id", "genres", "first_seen_date")
# 80 bits: collisions need ~2**40 distinct windows, and the name still fits in a table cell and a file name.
HASH_CHARS = 20


@dataclass(frozen=True)
class WindowSpec:
    """How to choose a training window.

    ``sliding`` takes the last ``days`` days; ``all_history`` everything up to the end day;
    ``recent_plus_sample`` the last ``days`` days plus ``older_fraction`` of the older movies, picked with
    ``sampling``. ``max_rows`` caps the window, sampling it down with ``sampling`` when it is larger.
    """

    strategy: str
    days: int = 30
    older_fraction: float = 0.2
    sampling: str = "random"
    max_rows: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy {self.strategy!r} is not one of: {', '.join(STRATEGIES)}")
        if self.sampling not in SAMPLING_METHODS:
            raise ValueError(f"sampling {self.sampling!r} is not one of: {', '.join(SAMPLING_METHODS)}")
        if self.days < 1:
            raise ValueError(f"days must be at least 1 (the window includes its end day); got {self.days!r}")
        if not 0 <= self.older_fraction <= 1:
            raise ValueError(f"older_fraction must be between 0 and 1; got {self.older_fraction!r}")
        if self.max_rows is not None and self.max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, or None for no cap; got {self.max_rows!r}")


@dataclass(frozen=True)
class WindowResult:
    """A chosen window: its rows (sorted by movie_id), content hash, bounds and what happened on the way.

    ``start`` is None for ``all_history``; for ``recent_plus_sample`` it is the start of the recent part.
    ``sampling_used`` is the method that actually ran, or ``"none"`` when no rows had to be sampled.
    """

    rows: pl.DataFrame
    window_hash: str
    spec: WindowSpec
    start: date | None
    end: date
    rows_per_genre: dict[str, int]
    notes: list[str]
    sampling_used: str


def static_test_ids(
    movie_ids: Iterable[str], fraction: float = STATIC_TEST_FRACTION, salt: str = STATIC_TEST_SALT
) -> set[str]:
    """The movie ids among ``movie_ids`` that belong to the static test set (a stable hash below ``fraction``)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"static test fraction must be between 0 and 1; got {fraction!r}")
    return {m for m in set(movie_ids) if unit_hash(salt, m) < fraction}


def split_static_test(
    frame: pl.DataFrame, fraction: float = STATIC_TEST_FRACTION, salt: str = STATIC_TEST_SALT
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``frame`` into (static test rows, the rest) by movie id."""
    test_ids = static_test_ids(frame["movie_id"].unique().to_list(), fraction, salt)
    in_test = pl.col("movie_id").is_in(pl.Series(sorted(test_ids), dtype=frame.schema["movie_id"]))
    return frame.filter(in_test), frame.filter(~in_test)


def backtest_slice(frame: pl.DataFrame, end: date, days: int = 3) -> pl.DataFrame:
    """Movies first seen in the ``days`` days ending on ``end`` (inclusive), outside the static test set."""
    if days < 1:
        raise ValueError(f"days must be at least 1 (the slice includes its end day); got {days!r}")
    _check_columns(frame)
    _, rest = split_static_test(frame)
    start = end - timedelta(days=days - 1)
    return rest.filter(pl.col("first_seen_date").is_between(start, end)).sort("movie_id")


def build_window(
    frame: pl.DataFrame, spec: WindowSpec, end: date, uncertainty: pl.DataFrame | None = None
) -> WindowResult:
    """Choose the labeled movies, outside the static test set, that a model trained on ``end`` sees.

    ``end`` is the last first-seen day included. ``uncertainty`` (movie_id, margin) comes from the champion
    and is only read for uncertainty sampling.
    """
    _check_columns(frame)
    _, candidates = split_static_test(frame)
    candidates = candidates.filter(pl.col("genres").list.len() > 0, pl.col("first_seen_date") <= end)
    start = None if spec.strategy == "all_history" else end - timedelta(days=spec.days - 1)
    rows = candidates if start is None else candidates.filter(pl.col("first_seen_date") >= start)
    notes: list[str] = []
    methods: list[str] = []

    def pick(pool: pl.DataFrame, n: int) -> pl.DataFrame:
        picked = sample(pool, n, spec.sampling, spec.seed, uncertainty)
        notes.extend(picked.notes)
        methods.append(picked.method)
        return picked.rows

    if spec.strategy == "recent_plus_sample":
        older = candidates.filter(pl.col("first_seen_date") < start)
        wanted = int(spec.older_fraction * older.height + 0.5)
        if wanted:
            rows = pl.concat([rows, older if wanted >= older.height else pick(older, wanted)])
    if spec.max_rows is not None and rows.height > spec.max_rows:
        notes.append(f"capped {rows.height} candidate rows to max_rows={spec.max_rows}")
        rows = pick(rows, spec.max_rows)
    rows = rows.sort("movie_id")
    if rows.is_empty():
        since = "ever" if start is None else f"from {start}"
        notes.append(f"no labeled movies outside the static test set were first seen {since} to {end}")
    return WindowResult(
        rows=rows,
        window_hash=window_hash(rows),
        spec=spec,
        start=start,
        end=end,
        rows_per_genre=rows_per_genre(rows),
        # The fallback note would repeat when both the older sample and the cap sampled.
        notes=list(dict.fromkeys(notes)),
        sampling_used=methods[-1] if methods else "none",
    )


def window_hash(frame: pl.DataFrame) -> str:
    """The first 20 hex characters of a sha256 over the rows' content, blind to row and column order.

    Each value is written as text (dates and datetimes in ISO 8601, tz-aware datetimes in UTC, lists
    element by element, in their stored order) and framed by its byte length, with ``~`` for null, so no
    two different frames serialize alike. Rows are sorted by that text and columns by name. This avoids
    polars' ``hash_rows`` and IPC bytes, which may change between releases; dtypes are not hashed, only
    the values as text.
    """
    columns = sorted(frame.columns)
    digest = hashlib.sha256("".join(_framed_text(c) for c in columns).encode())
    if columns and not frame.is_empty():
        row_text = frame.select(
            pl.concat_str([_token(pl.col(c), frame.schema[c]) for c in columns]).alias("row")
        )["row"]
        # Every row holds exactly one token per column, so concatenating the sorted rows stays unambiguous.
        digest.update(row_text.sort().str.join("").item().encode())
    return digest.hexdigest()[:HASH_CHARS]


def write_window(rows: pl.DataFrame, window_hash: str, folder: Path) -> Path:
    """Write ``rows`` to ``folder/<window_hash>.parquet`` unless that file already exists.

    The name is the content, so an existing file already holds these rows; a new one is written to a
    temporary file and renamed into place, so readers never see half a window.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{window_hash}.parquet"
    if path.exists():
        return path
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{window_hash}.", suffix=".tmp")
    os.close(fd)
    try:
        rows.write_parquet(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _check_columns(frame: pl.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"movies frame lacks column(s) {', '.join(missing)}; windows need {', '.join(REQUIRED_COLUMNS)}"
        )


def rows_per_genre(rows: pl.DataFrame) -> dict[str, int]:
    """Movies per genre (a movie counts once in each of its genres); every canonical genre appears, even at 0."""
    counted = dict(
        rows.select(pl.col("genres").list.unique()).explode("genres").drop_nulls().group_by("genres").len().iter_rows()
    )
    extra = sorted(set(counted) - set(CANONICAL_GENRES))
    return {g: counted.get(g, 0) for g in (*CANONICAL_GENRES, *extra)}


def _framed_text(text: str) -> str:
    return f"{len(text.encode())}:{text}"


def _token(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A column's values as length-framed text (``~`` for null), the unit ``window_hash`` digests."""
    if isinstance(dtype, (pl.List, pl.Array)):
        inner = dtype.inner
        text = expr.cast(pl.List(inner)).list.eval(_token(pl.element(), inner)).list.join("")
    elif isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            expr = expr.dt.convert_time_zone("UTC")
        text = expr.dt.to_string("%Y-%m-%dT%H:%M:%S%.9f" + ("+00:00" if dtype.time_zone else ""))
    elif isinstance(dtype, pl.Date):
        text = expr.dt.to_string("%Y-%m-%d")
    else:
        text = expr.cast(pl.String)
    return (
        pl.when(text.is_null())
        .then(pl.lit("~"))
        .otherwise(pl.concat_str([text.str.len_bytes().cast(pl.String), pl.lit(":"), text]))
    )

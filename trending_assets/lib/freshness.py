"""The value of data freshness: how much worse a model trained on older movies does on the newest ones.

The history before ``eval_start`` is cut into age buckets of equal length ("0-30 days old", "30-60 days old",
...). One model is trained from scratch on each bucket, every bucket downsampled to the same number of movies
so that age is the only difference between them, and all are scored on the same newest movies. The drop in
macro F1 from the newest bucket to older ones says how stale a model may get before retraining pays off.

Too little data is a result, not an error: buckets shrink to fit a short history, and a bucket with too few
movies is reported as "insufficient data". Time runs on ``first_seen_date``, as for training windows. Pass
movies outside the static test set (``windows.split_static_test``), as for any training window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb
import polars as pl

from trending_assets.lib.features import label_matrix
from trending_assets.lib.genre_model import DEFAULT_THRESHOLD, to_labels
from trending_assets.lib.genres import CANONICAL_GENRES
from trending_assets.lib.metrics import summary
from trending_assets.lib.sampling import sample
from trending_assets.lib.windows import REQUIRED_COLUMNS
from trending_assets.lib.xgb_trainer import XGBConfig, train_stateless

OK, INSUFFICIENT = "ok", "insufficient data"
# The smallest macro-F1 drop called a loss: one point, a rule of thumb. Models trained on a few hundred movies can
# differ by that much through their sample alone, and advice that flipped on smaller differences would flip from
# run to run. Not calibrated on real data; a bootstrap over the scored movies would be the next step.
MEANINGFUL_DROP = 0.01
RESULT_SCHEMA = {
    "label": pl.String,
    "start": pl.Date,
    "end": pl.Date,
    "age_days_mid": pl.Float64,
    "train_rows": pl.Int64,
    "eval_rows": pl.Int64,
    "micro_f1": pl.Float64,
    "macro_f1": pl.Float64,
    "status": pl.String,
    "seconds": pl.Float64,
}


@dataclass(frozen=True)
class AgeBucket:
    """Movies first seen from ``start`` to ``end`` (both inclusive), named by their age, e.g. "30-60 days old"."""

    label: str
    start: date
    end: date


@dataclass(frozen=True)
class FreshnessPlan:
    """How an experiment was set up, for a run's metadata: bucket length and count, movies per model, notes."""

    bucket_days: int
    n_buckets: int
    rows_per_bucket: int
    eval_start: date
    notes: tuple[str, ...]


def plan_buckets(
    movies: pl.DataFrame, eval_start: date, bucket_days: int = 30, n_buckets: int = 3
) -> tuple[list[AgeBucket], list[str]]:
    """Age buckets of ``bucket_days`` days going back from the day before ``eval_start``, newest first, and notes.

    Only labeled movies first seen before ``eval_start`` count as history. When it is shorter than
    ``n_buckets * bucket_days``, buckets shrink to ``history_days // n_buckets`` days (at least 1); buckets that
    would still lie wholly before the earliest movie are left out. Never raises for too little history: the
    notes say what was shrunk, left out or missing.
    """
    if bucket_days < 1 or n_buckets < 1:
        raise ValueError(f"bucket_days and n_buckets must be at least 1; got {bucket_days!r} and {n_buckets!r}")
    history = _labeled(_checked(movies, "movies"), CANONICAL_GENRES).filter(pl.col("first_seen_date") < eval_start)
    if history.is_empty():
        return [], [f"no labeled movies were first seen before {eval_start}; there is no older data to compare"]
    earliest = history["first_seen_date"].min()
    history_days = (eval_start - earliest).days
    notes = []
    if history_days < n_buckets * bucket_days:
        shrunk = max(1, history_days // n_buckets)
        notes.append(
            f"history before {eval_start} covers only {history_days} days (from {earliest}), less than "
            f"{n_buckets} buckets x {bucket_days} days; buckets shrunk to {shrunk} days each"
        )
        bucket_days = shrunk
    buckets = [_bucket(eval_start, i, bucket_days) for i in range(n_buckets)]
    buckets = [b for b in buckets if b.end >= earliest]
    with_data = sum(not _in_bucket(history, b).is_empty() for b in buckets)
    if with_data < 2:
        notes.append(
            f"only {with_data} age bucket(s) of {bucket_days} days hold labeled movies; comparing ages needs at "
            "least 2, so the experiment cannot measure the value of freshness yet"
        )
    return buckets, notes


def run_experiment(
    movies: pl.DataFrame,
    eval_frame: pl.DataFrame,
    buckets: list[AgeBucket],
    config: XGBConfig,
    genres: tuple[str, ...] = CANONICAL_GENRES,
    seed: int = 0,
    min_rows: int = 20,
) -> pl.DataFrame:
    """Train one stateless model per age bucket and score each on ``eval_frame``: one row per bucket.

    Every bucket with at least ``min_rows`` labeled movies is sampled down (seeded by ``seed``) to the smallest
    such bucket's count; the others are reported with status "insufficient data", no scores, and the movies they
    had in ``train_rows``. Models predict at threshold 0.5 (at least the likeliest genre) and are scored with
    ``metrics.summary`` on ``eval_frame``'s labeled movies. Ages (``age_days_mid``, the middle of the bucket's
    age range) count from the day after the newest bucket, which is ``eval_start`` for ``plan_buckets``' buckets.
    Columns: ``RESULT_SCHEMA``; ``seconds`` is the training time.
    """
    if min_rows < 1:
        raise ValueError(f"min_rows must be at least 1 (a model needs movies to train on); got {min_rows!r}")
    genres = tuple(genres)
    scored = _labeled(_checked(eval_frame, "eval_frame"), genres)
    # A movie being scored must never have been trained on, whatever first-seen date its copies carry.
    pool = _labeled(_checked(movies, "movies"), genres).filter(
        ~pl.col("movie_id").is_in(scored["movie_id"].implode())
    )
    pools = [_in_bucket(pool, b) for b in buckets]
    size = min((p.height for p in pools if p.height >= min_rows), default=0)
    truth = label_matrix(scored, genres)
    now = max((b.end for b in buckets), default=date.min) + timedelta(days=1)
    rows = []
    for bucket, rows_in_bucket in zip(buckets, pools):
        row = {
            "label": bucket.label,
            "start": bucket.start,
            "end": bucket.end,
            "age_days_mid": ((now - bucket.start).days + (now - bucket.end).days - 1) / 2,
            "train_rows": rows_in_bucket.height,
            "eval_rows": scored.height,
            "micro_f1": None,
            "macro_f1": None,
            "status": INSUFFICIENT,
            "seconds": None,
        }
        if rows_in_bucket.height >= min_rows and not scored.is_empty():
            model = train_stateless(sample(rows_in_bucket, size, "random", seed).rows, config, genres)
            scores = summary(truth, to_labels(model.predict_proba(scored), DEFAULT_THRESHOLD))
            row.update(
                train_rows=size,
                micro_f1=scores["micro_f1"],
                macro_f1=scores["macro_f1"],
                status=OK,
                seconds=model.report.seconds,
            )
        rows.append(row)
    return pl.DataFrame(rows, schema=RESULT_SCHEMA)


def retrain_advice(table: pl.DataFrame) -> str:
    """A sentence or two on how often retraining pays off, read from ``run_experiment``'s table.

    Compares each older bucket with the newest one that was scored; a macro-F1 drop of at least
    ``MEANINGFUL_DROP`` in the youngest such bucket sets the advice. A bucket whose data is N days older than the
    newest bucket's stands for a model retrained every N days, at the end of its life.
    """
    scored = table.filter(pl.col("status") == OK).sort("age_days_mid")
    if scored.height < 2:
        return (
            f"Not enough data to measure the value of freshness: only {scored.height} of {table.height} age "
            "buckets had enough labeled movies to train on and score. Collect more history, or use shorter or fewer "
            "buckets, before deciding how often to retrain."
        )
    newest = scored.row(0, named=True)
    for bucket in scored.slice(1).iter_rows(named=True):
        drop = newest["macro_f1"] - bucket["macro_f1"]
        if drop >= MEANINGFUL_DROP:
            every = (newest["end"] - bucket["end"]).days
            return (
                f"Models trained on data {bucket['label']} score {drop:.3f} macro F1 below models trained on data "
                f"{newest['label']}, on the newest movies; retraining at least every {every} days pays off."
            )
    oldest = scored.row(-1, named=True)
    every = (newest["end"] - oldest["end"]).days
    return (
        f"No measurable loss from older data: models trained on data {oldest['label']} score within "
        f"{MEANINGFUL_DROP} macro F1 of models trained on data {newest['label']}; retraining more often than "
        f"every {every} days is unlikely to pay off."
    )


def describe_plan(
    buckets: list[AgeBucket], table: pl.DataFrame, eval_start: date, notes: list[str]
) -> FreshnessPlan:
    """The ``FreshnessPlan`` of an experiment: ``plan_buckets``' buckets and notes, ``run_experiment``'s table."""
    trained = table.filter(pl.col("status") == OK)["train_rows"]
    return FreshnessPlan(
        bucket_days=(buckets[0].end - buckets[0].start).days + 1 if buckets else 0,
        n_buckets=len(buckets),
        rows_per_bucket=int(trained.max()) if trained.len() else 0,
        eval_start=eval_start,
        notes=tuple(notes),
    )


def _bucket(eval_start: date, index: int, days: int) -> AgeBucket:
    end = eval_start - timedelta(days=index * days + 1)
    return AgeBucket(f"{index * days}-{(index + 1) * days} days old", end - timedelta(days=days - 1), end)


def _in_bucket(frame: pl.DataFrame, bucket: AgeBucket) -> pl.DataFrame:
    return frame.filter(pl.col("first_seen_date").is_between(bucket.start, bucket.end))


def _labeled(frame: pl.DataFrame, genres: tuple[str, ...]) -> pl.DataFrame:
    """Movies with at least one genre in ``genres``; the others teach and test nothing."""
    return frame.filter(pl.col("genres").list.eval(pl.element().is_in(list(genres))).list.any().fill_null(False))


def _checked(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} lacks column(s) {', '.join(missing)}; the experiment needs {', '.join(REQUIRED_COLUMNS)}"
        )
    return frame


DDL = (
    "CREATE SCHEMA IF NOT EXISTS ml",
    """CREATE TABLE IF NOT EXISTS ml.freshness_experiments (
        run_at TIMESTAMP NOT NULL,            -- UTC; one experiment = the rows sharing run_at
        eval_window_id VARCHAR NOT NULL,      -- the backtest slice every bucket model was scored on
        label VARCHAR NOT NULL,               -- e.g. "30-60 days old"
        start_date DATE NOT NULL,
        end_date DATE NOT NULL,
        age_days_mid DOUBLE NOT NULL,
        train_rows BIGINT NOT NULL,
        eval_rows BIGINT NOT NULL,
        micro_f1 DOUBLE,                      -- NULL when status is "insufficient data"
        macro_f1 DOUBLE,
        status VARCHAR NOT NULL,
        seconds DOUBLE
    )""",
)


def record(con: duckdb.DuckDBPyConnection, table: pl.DataFrame, eval_window_id: str, run_at: datetime) -> None:
    """Append one experiment's rows to ``ml.freshness_experiments``."""
    for statement in DDL:
        con.execute(statement)
    rows = table.select(
        pl.lit(run_at).alias("run_at"), pl.lit(eval_window_id).alias("eval_window_id"), "label",
        pl.col("start").alias("start_date"), pl.col("end").alias("end_date"), "age_days_mid", "train_rows",
        "eval_rows", "micro_f1", "macro_f1", "status", "seconds",
    )
    con.register("_freshness_rows", rows)
    try:
        con.execute("INSERT INTO ml.freshness_experiments SELECT * FROM _freshness_rows")
    finally:
        con.unregister("_freshness_rows")

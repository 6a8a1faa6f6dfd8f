"""Curated datasets for training and evaluation: the training window, the recent backtest slice and the
frozen static test set. Each is content-addressed Parquet recorded in ``ml.training_windows``."""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from trending_assets.defs.automation.conditions import on_upstream_update
from trending_assets.defs.automation.freshness import WEEKLY_RETRAIN
from trending_assets.defs.warehouse.resources import WAREHOUSE_POOL, WarehouseResource
from trending_assets.lib import genre_model, window_store, windows
from trending_assets.lib.ingest import utc_now

DIM_MOVIES = dg.AssetKey(["marts", "dim_movies"])
COMMON = dict(key_prefix=["ml"], group_name="windows", kinds={"duckdb", "parquet", "polars"}, pool=WAREHOUSE_POOL,
              automation_condition=on_upstream_update())


class StaticTestConfig(dg.Config):
    min_rows: int = 30  # freeze only once the test bucket holds this many labeled movies


class BacktestConfig(dg.Config):
    days: int = 3  # the newest days, held out of the default training window


class TrainingWindowConfig(dg.Config):
    strategy: str = "sliding"  # sliding | all_history | recent_plus_sample
    days: int = 30
    older_fraction: float = 0.2
    sampling: str = "stratified"  # random | stratified | uncertainty
    max_rows: int | None = None
    seed: int = 0
    end_date: str | None = None  # ISO date; default: the day before the backtest slice
    hold_out_backtest: bool = True


def _latest_day(frame: pl.DataFrame) -> date | None:
    return frame.select(pl.col("first_seen_date").max()).item() if frame.height else None


def _publish(con, warehouse: WarehouseResource, kind: str, rows: pl.DataFrame, **record) -> tuple[str, Path, dict]:
    """Write rows once under their content hash and record them in ml.training_windows."""
    digest = windows.window_hash(rows)
    counts = windows.rows_per_genre(rows)
    path = windows.write_window(rows, digest, warehouse.home.windows / kind)
    window_store.record(con, window_id=digest, kind=kind, rows=rows, path=path, rows_per_genre=counts, **record)
    return digest, path, counts


def _champion_margins(con, movies: pl.DataFrame, context: dg.AssetExecutionContext) -> pl.DataFrame | None:
    """The champion's margin on every movie, for uncertainty sampling; None (stratified, noted) without one."""
    try:
        version_id, model = genre_model.load_alias(con, "champion")
    except LookupError:
        return None
    context.log.info(f"uncertainty sampling by champion {version_id}'s margins on {movies.height} movies")
    return genre_model.margins(model, movies)


def _genre_table(counts: dict[str, int]) -> str:
    rows = [f"| {genre} | {n} |" for genre, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n]
    return "\n".join(["| genre | rows |", "|---|---|", *rows])


@dg.asset(deps=[DIM_MOVIES], description="A frozen static test set: movies whose id hashes into the test "
          "bucket, frozen at first materialization and never part of any training window.", **COMMON)
def static_test_set(context: dg.AssetExecutionContext, config: StaticTestConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    now = utc_now()
    with warehouse.connect() as con:
        rows, frozen_at = window_store.frozen_static_test_set(con, now, config.min_rows)
        if frozen_at is None:
            context.log.warning(f"static test set not frozen yet: {rows.height} labeled movies in the test bucket, "
                                f"waiting for {config.min_rows}")
            return dg.MaterializeResult(metadata={"dagster/row_count": 0, "frozen": False, "candidates": rows.height,
                                                  "min_rows": config.min_rows})
        digest, path, counts = _publish(con, warehouse, "static_test", rows, start=None, end=_latest_day(rows), now=now)
    return dg.MaterializeResult(
        metadata={"dagster/row_count": rows.height, "frozen": True, "window_id": digest, "frozen_at": str(frozen_at),
                  "path": dg.MetadataValue.path(str(path)), "rows_per_genre": dg.MetadataValue.md(_genre_table(counts))},
        data_version=dg.DataVersion(digest),
    )


@dg.asset(deps=[DIM_MOVIES], description="The newest days of labeled movies (not in the static test set), "
          "for backtesting a model on what just arrived.", **COMMON)
def backtest_slice(context: dg.AssetExecutionContext, config: BacktestConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    now = utc_now()
    with warehouse.connect() as con:
        movies = window_store.labeled_movies(con).filter(pl.col("genres").list.len() > 0)
        end = _latest_day(movies) or now.date()
        rows = windows.backtest_slice(movies, end, config.days).sort("movie_id")
        start = end - timedelta(days=config.days - 1)
        digest, path, counts = _publish(con, warehouse, "backtest", rows, start=start, end=end, strategy="sliding",
                                        config=config.model_dump(), now=now)
    return dg.MaterializeResult(
        metadata={"dagster/row_count": rows.height, "window_id": digest, "start": str(start), "end": str(end),
                  "path": dg.MetadataValue.path(str(path)), "rows_per_genre": dg.MetadataValue.md(_genre_table(counts))},
        data_version=dg.DataVersion(digest),
    )


# Built by each retrain (retrain_job), not on every data update: a window is what a model trains on.
@dg.asset(deps=[DIM_MOVIES, static_test_set, backtest_slice], description="The curated training window: "
          "labeled movies chosen by strategy (sliding / all_history / recent_plus_sample) and sampling "
          "(random / stratified / uncertainty), written once as Parquet named by its content hash. Built by "
          "retrain_job.", freshness_policy=WEEKLY_RETRAIN, **{**COMMON, "automation_condition": None})
def training_window(context: dg.AssetExecutionContext, config: TrainingWindowConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    spec = windows.WindowSpec(config.strategy, config.days, config.older_fraction, config.sampling,
                              config.max_rows, config.seed)
    now = utc_now()
    with warehouse.connect() as con:
        movies = window_store.labeled_movies(con)
        latest = _latest_day(movies) or now.date()
        if config.end_date:
            end = date.fromisoformat(config.end_date)
        else:
            end = latest - timedelta(days=BacktestConfig().days if config.hold_out_backtest else 0)
        uncertainty = _champion_margins(con, movies, context) if spec.sampling == "uncertainty" else None
        result = windows.build_window(movies, spec, end, uncertainty=uncertainty)
        path = windows.write_window(result.rows, result.window_hash, warehouse.home.windows / "training")
        new = window_store.record(
            con, window_id=result.window_hash, kind="training", rows=result.rows, path=path,
            rows_per_genre=result.rows_per_genre, start=result.start, end=result.end, strategy=spec.strategy,
            sampling=result.sampling_used, config=config.model_dump(), notes=result.notes, now=now,
        )
    for note in result.notes:
        context.log.info(note)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.rows.height,
            "window_id": result.window_hash,
            "new_content": new,
            "strategy": spec.strategy,
            "sampling": result.sampling_used,
            "start": str(result.start),
            "end": str(result.end),
            "notes": dg.MetadataValue.json(result.notes),
            "path": dg.MetadataValue.path(str(path)),
            "rows_per_genre": dg.MetadataValue.md(_genre_table(result.rows_per_genre)),
        },
        data_version=dg.DataVersion(result.window_hash),
    )

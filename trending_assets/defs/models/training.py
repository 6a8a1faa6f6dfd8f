"""Training assets: one per model family. Each reads the current training window, lets the hybrid policy choose
stateless or stateful, trains, saves the artifact under ``$TRENDING_HOME/models/`` and registers it as a
``candidate`` in the registry (``ml.model_versions``), mirrored to W&B."""

from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import polars as pl

from trending_assets.defs.automation.execution import HEAVY
from trending_assets.defs.models.config import PolicyConfig, TransformerTrainingConfig, XGBoostTrainingConfig
from trending_assets.defs.models.resources import WandbResource
from trending_assets.defs.models.upstream import latest_metadata
from trending_assets.defs.warehouse.resources import WAREHOUSE_POOL, WarehouseResource
from trending_assets.lib import training
from trending_assets.lib.genre_model import TRANSFORMER, XGBOOST

TRAINING_WINDOW = dg.AssetKey(["ml", "training_window"])
# output_required=False: with nothing new to learn, training yields no materialization (see _train).
# No automation condition: a retrain is decided by the triggers in defs/retraining, which launch retrain_job.
COMMON = dict(key_prefix=["ml"], group_name="models", deps=[TRAINING_WINDOW], pool=WAREHOUSE_POOL, op_tags=HEAVY,
              output_required=False)


def candidate_key(family: str) -> dg.AssetKey:
    return dg.AssetKey(["ml", f"{family}_candidate"])


def _train(
    context: dg.AssetExecutionContext, family: str, config: PolicyConfig, code_version: str,
    warehouse: WarehouseResource, wandb: WandbResource, fit: Callable[..., training.TrainedModel],
) -> Iterator[dg.MaterializeResult]:
    window = latest_metadata(context, TRAINING_WINDOW)
    rows = pl.read_parquet(window["path"]).filter(pl.col("genres").list.len() > 0)
    if rows.height < config.min_rows:
        context.log.warning(f"{family}: window {window['window_id']} holds {rows.height} labeled movies, fewer "
                            f"than min_rows={config.min_rows}; no candidate until more data lands")
        return  # no materialization, as below
    with warehouse.connect() as con:
        parent = training.find_parent(con, family)
        same = training.already_trained(con, family, window["window_id"], code_version)
    if same is not None and config.force_mode is None:
        context.log.info(f"{family}: nothing new to learn: {same.version_id} was trained on window "
                         f"{window['window_id']} with this recipe ({code_version}); no candidate this time")
        return  # no materialization: the evaluation and staging downstream are skipped in this run
    new_rows = training.new_since(rows, parent).height
    decision = training.decide(family, code_version, parent, new_rows, config.every_k, config.force_mode)
    context.log.info(f"{family}: {decision.mode} training on window {window['window_id']} ({rows.height} movies, "
                     f"{new_rows} new since the parent's window): {decision.reason}")
    trained = fit(decision, rows, parent, training.artifact_dir(warehouse.home.models, family))
    with warehouse.connect() as con:
        version = training.register(con, trained, window["window_id"], config.every_k)
    context.log.info(f"registered {version.version_id} as a candidate ({trained.metrics['train_seconds']:.1f}s)")
    tracked = {"family": family, "window_id": window["window_id"], "mode": decision.mode, **trained.hyperparameters}
    with wandb.run(version.version_id, tracked, log=context.log, group=version.version_id) as run:
        run.log_metrics({k: v for k, v in trained.metrics.items() if isinstance(v, int | float)})
        run.log_model(trained.artifact, f"{family}-genre-model", aliases=["candidate", version.version_id],
                      metadata={"registry_version": version.version_id, "sha256": version.artifact_sha256})
    yield dg.MaterializeResult(
        metadata={
            "version_id": version.version_id,
            "training_mode": decision.mode,
            "reason": decision.reason,
            "parent_version": decision.parent_version or "none",
            "window_id": window["window_id"],
            "code_version": trained.code_version,
            "rows_trained_on": trained.metrics["train_rows"],
            "new_rows_since_parent": new_rows,
            "train_seconds": trained.metrics["train_seconds"],
            "artifact": dg.MetadataValue.path(str(trained.artifact)),
            "sha256": version.artifact_sha256,
            "training_metrics": dg.MetadataValue.json(trained.metrics),
        },
        data_version=dg.DataVersion(version.version_id),
    )


@dg.asset(
    name=f"{XGBOOST}_candidate", kinds={"xgboost", "duckdb"}, code_version=XGBoostTrainingConfig().recipe().version,
    description="An XGBoost genre model trained on the training window (hashed text + metadata features; "
    "stateful updates boost the parent further on the movies since its window), registered as a candidate.",
    **COMMON,
)
def xgboost_candidate(
    context: dg.AssetExecutionContext, config: XGBoostTrainingConfig, warehouse: WarehouseResource,
    wandb: WandbResource,
) -> Iterator[dg.MaterializeResult]:
    def fit(decision, rows, parent, out):
        return training.train_xgboost(decision, rows, parent, config.recipe(), config.extra_rounds, out)

    yield from _train(context, XGBOOST, config, config.recipe().version, warehouse, wandb, fit)


@dg.asset(
    name=f"{TRANSFORMER}_candidate", kinds={"pytorch", "duckdb"},
    code_version=TransformerTrainingConfig().recipe().version,
    description="A MiniLM (BERT-family) multi-label genre classifier fine-tuned on the training window (stateful "
    "updates fine-tune the parent on new movies plus a replay sample), registered as a candidate.",
    **COMMON,
)
def transformer_candidate(
    context: dg.AssetExecutionContext, config: TransformerTrainingConfig, warehouse: WarehouseResource,
    wandb: WandbResource,
) -> Iterator[dg.MaterializeResult]:
    from trending_assets.lib.transformer_model import default_base_dir

    base = Path(config.base_model) if config.base_model else default_base_dir()

    def fit(decision, rows, parent, out: Path):
        return training.train_transformer(decision, rows, parent, config.recipe(), base, out, log=context.log.info)

    yield from _train(context, TRANSFORMER, config, config.recipe().version, warehouse, wandb, fit)

"""One training step of a genre model family under the hybrid policy: find the parent, decide stateless or
stateful, train on the right rows, and save the artifact for the registry.

A stateful update continues the family's lineage head on only the movies first seen after the parent's window
ended (the XGBoost booster gets more rounds; the transformer is fine-tuned further with a replay sample of older
movies). The parent is the champion when it is of this family, else the family's newest version that passed the
offline gates (staging or production), so each family keeps its own lineage while another family holds the
champion alias. What the policy needs from the parent is stored on its registry row (``hyperparameters.policy``).
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from trending_assets.lib import registry, retrain_policy
from trending_assets.lib.genre_model import TRANSFORMER, XGBOOST, check_family
from trending_assets.lib.ingest import utc_now
from trending_assets.lib.registry_schema import ModelVersion
from trending_assets.lib.retrain_policy import STATEFUL, STATELESS, ParentModel, TrainingDecision
from trending_assets.lib.warehouse import table_exists

CHAMPION = "champion"
LINEAGE_STAGES = ("production", "staging")
Log = Callable[[str], None]


@dataclass(frozen=True)
class Parent:
    """A registered model a stateful update may continue, with the policy's view of it."""

    version: ModelVersion
    window_end: date
    window_path: Path | None

    @property
    def policy_view(self) -> ParentModel:
        policy = self.version.hyperparameters.get("policy", {})
        return ParentModel(
            version_id=self.version.version_id,
            family=self.version.family,
            code_version=self.version.code_version,
            updates_since_stateless=int(policy.get("updates_since_stateless", 0)),
            window_end=self.window_end,
        )


@dataclass(frozen=True)
class TrainedModel:
    """What training wrote and what the registry row should say about it."""

    family: str
    decision: TrainingDecision
    artifact: Path
    code_version: str
    hyperparameters: dict
    metrics: dict
    rows_new: int


def find_parent(con: duckdb.DuckDBPyConnection, family: str) -> Parent | None:
    """The model a stateful ``family`` update would continue, or None when there is none."""
    check_family(family)
    if not table_exists(con, "ml", "training_windows"):
        return None  # no window was ever recorded, so no version can say where its data ended
    candidates = []
    current = champion(con)
    if current is not None and current.family == family:
        candidates.append(current)
    candidates += sorted(
        (v for v in registry.list_versions(con, family) if v.stage in LINEAGE_STAGES),
        key=lambda v: v.version_number, reverse=True,
    )
    for version in candidates:
        rows = con.execute(
            "SELECT end_date, path FROM ml.training_windows WHERE window_id = ? AND kind = 'training'",
            [version.window_id],
        ).fetchall()
        if rows and rows[0][0] is not None:
            return Parent(version, rows[0][0], Path(rows[0][1]) if rows[0][1] else None)
    return None


def champion(con: duckdb.DuckDBPyConnection) -> ModelVersion | None:
    """The version the ``champion`` alias points at; None before the first champion or after its removal."""
    try:
        return registry.resolve_alias(con, CHAMPION)
    except registry.UnknownAliasError:
        return None


def new_since(window: pl.DataFrame, parent: Parent | None) -> pl.DataFrame:
    """The window's movies first seen after the parent's window ended (all of them without a parent)."""
    if parent is None:
        return window
    return window.filter(pl.col("first_seen_date") > parent.window_end)


def already_trained(
    con: duckdb.DuckDBPyConnection, family: str, window_id: str, code_version: str
) -> ModelVersion | None:
    """The live version of ``family`` trained on this very window with this very recipe, if any: training
    again would only repeat it (training is seeded), so there is nothing new to learn."""
    return next((v for v in reversed(registry.list_versions(con, family))
                 if v.window_id == window_id and v.code_version == code_version and v.stage != "archived"), None)


def decide(
    family: str, code_version: str, parent: Parent | None, new_rows: int, every_k: int, force: str | None
) -> TrainingDecision:
    """The hybrid policy's decision, plus one rule of its own: nothing new since the parent means stateless."""
    decision = retrain_policy.decide(family, code_version, parent.policy_view if parent else None, every_k, force)
    if decision.mode == STATEFUL and new_rows == 0:
        if force == STATEFUL:
            raise ValueError(f"forced stateful, but no movie in the window is newer than {parent.version.version_id}'s "
                             f"window (ended {parent.window_end}); remove the force or wait for new data")
        return TrainingDecision(STATELESS, f"no movie newer than {parent.version.version_id}'s window "
                                f"(ended {parent.window_end}) to continue on", None, 0)
    return decision


def artifact_dir(models_root: Path, family: str) -> Path:
    """A new folder for one training run's artifact; the registry names the version once it is written."""
    stamp = utc_now().strftime("%Y%m%dT%H%M%S")
    return models_root / family / f"{stamp}-{uuid.uuid4().hex[:8]}"


def train_xgboost(
    decision: TrainingDecision, window: pl.DataFrame, parent: Parent | None, config, extra_rounds: int, out: Path,
) -> TrainedModel:
    """Train (stateless: ``config.n_rounds`` on the window; stateful: ``extra_rounds`` on the new movies) and save."""
    from trending_assets.lib.xgb_trainer import XGBModel, train_stateful, train_stateless

    started = time.perf_counter()
    if decision.mode == STATEFUL:
        rows = new_since(window, parent)
        model = train_stateful(XGBModel.load(Path(parent.version.artifact_path)), rows, config, extra_rounds)
    else:
        rows = window
        model = train_stateless(rows, config)
    model.save(out)
    report = model.report
    metrics = {
        "train_rows": report.rows, "skipped_unlabeled": report.skipped_unlabeled, "rounds_added": report.rounds,
        "n_rounds": model.n_rounds, "n_trees": model.n_trees, "train_seconds": round(time.perf_counter() - started, 3),
        "genres_held": list(report.genres_held),
    }
    hyper = {"config": _jsonable(config), "extra_rounds": extra_rounds}
    return TrainedModel(XGBOOST, decision, out, config.version, hyper, metrics, rows.height)


def train_transformer(
    decision: TrainingDecision, window: pl.DataFrame, parent: Parent | None, config, base_dir: Path, out: Path,
    log: Log | None = None,
) -> TrainedModel:
    """Fine-tune (stateless: from the base on the window; stateful: the parent on new movies plus replay) and save.

    Replay draws from the window's older movies and the parent's own window, so the child rehearses what the
    parent learned; ``config.replay_share`` sets the mix.
    """
    from trending_assets.lib.transformer_model import TransformerModel
    from trending_assets.lib.transformer_trainer import train_stateful, train_stateless

    if decision.mode == STATEFUL:
        new = new_since(window, parent)
        replay = window.filter(pl.col("first_seen_date") <= parent.window_end)
        if parent.window_path is not None and parent.window_path.exists():
            older = pl.read_parquet(parent.window_path).select(replay.columns)
            replay = pl.concat([replay, older], how="vertical_relaxed").unique("movie_id", keep="first")
        parent_model = TransformerModel.load(parent.version.artifact_path, device=config.device)
        model, report = train_stateful(parent_model, new, replay, config, log, base_dir=base_dir)
    else:
        new = window
        model, report = train_stateless(window, base_dir, config, log)
    model.save(out)
    metrics = {
        "train_rows": report.rows_new + report.rows_replay, "rows_new": report.rows_new,
        "rows_replay": report.rows_replay, "steps": report.steps, "examples_seen": report.examples_seen,
        "examples_per_second": round(report.examples_per_second, 2), "train_seconds": round(report.wall_seconds, 3),
        "first_loss": report.first_loss, "final_loss": report.final_loss, "device": report.device,
        "truncated_rows": report.truncated_rows,
    }
    hyper = {"config": _jsonable(config), "base": str(base_dir), "model_id": report.model_id}
    return TrainedModel(TRANSFORMER, decision, out, config.version, hyper, metrics, new.height)


def register(
    con: duckdb.DuckDBPyConnection, trained: TrainedModel, window_id: str, every_k: int
) -> ModelVersion:
    """Record the trained model as a candidate, with the policy state the next decision reads."""
    decision = trained.decision
    hyper = {**trained.hyperparameters,
             "policy": {"every_k": every_k, "updates_since_stateless": decision.updates_since_stateless}}
    return registry.register(
        con, trained.family, trained.artifact, decision.mode, decision.reason, decision.parent_version, window_id,
        trained.code_version, hyper, trained.metrics,
    )


def _jsonable(config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))

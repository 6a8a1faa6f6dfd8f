"""The XGBoost genre model: trained from scratch on a window (stateless) or boosted further on new rows (stateful).

One booster predicts every genre: ``binary:logistic`` on a ``(rows, genres)`` label matrix with
``multi_strategy="one_output_per_tree"``, so each boosting round grows one tree per genre. Rather than a booster
per genre, because the feature histograms are built once for all genres instead of once each, continuing is one
``xgb.train(xgb_model=...)`` call, and one file holds the model.

A genre whose labels in the rows being trained on are all alike (usually: no positives) is held, not trained:
its targets are the model's current probabilities (the intercept for a new model, the parent's prediction for a
continuation), so its gradient is zero and its trees are single zero leaves. Trained on hard zeros instead, its
probability would sink until the logistic hessian fell below ``min_child_weight``, and no later window could
grow a split for it again; a small batch without westerns would also erase what the parent knew of westerns.

A model is saved as ``booster.ubj`` (XGBoost's own format) and ``model.json`` (spec, config, genres, and the
training history that names its parents); never pickled.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    import xgboost as xgb

# xgboost is imported where it is used: every Dagster process loads this module (XGBConfig lives here), and
# xgboost (with the scikit-learn it pulls in) takes about a second to import.

from trending_assets.lib.features import FeatureSpec, featurize, label_matrix
from trending_assets.lib.genres import CANONICAL_GENRES

MODEL_FORMAT = 1
# Intercepts stay inside this band. A genre without positives is held at its intercept (see above); at a
# prevalence of 0 its logistic hessian p(1 - p) would vanish, and a later window that brings its positives could
# never grow a split for it. At 0.01, about 100 rows reach min_child_weight 1.
MIN_INTERCEPT, MAX_INTERCEPT = 0.01, 0.99


@dataclass(frozen=True)
class XGBConfig:
    """Hyperparameters of the genre booster and the feature space it reads.

    ``version`` names the recipe; ``nthread`` is left out of it because it changes how fast, not what.
    """

    n_rounds: int = 100
    max_depth: int = 6
    eta: float = 0.1
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    max_bin: int = 256
    tree_method: str = "hist"
    seed: int = 0
    nthread: int = 2
    features: FeatureSpec = FeatureSpec()

    def __post_init__(self) -> None:
        if isinstance(self.features, dict):  # as read back from model.json
            object.__setattr__(self, "features", FeatureSpec(**self.features))
        if self.n_rounds < 1:
            raise ValueError(f"n_rounds must be at least 1; got {self.n_rounds!r}")
        for name in ("subsample", "colsample_bytree", "eta"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1]; got {getattr(self, name)!r}")

    @property
    def version(self) -> str:
        """12 hex characters fixed by the hyperparameters and the feature spec's version."""
        recipe = {**asdict(self), "features": self.features.version}
        del recipe["nthread"]
        return hashlib.blake2b(json.dumps(recipe, sort_keys=True).encode(), digest_size=6).hexdigest()

    def params(self) -> dict:
        """The parameters ``xgb.train`` takes, without the intercepts (those come from the first window)."""
        booster = {k: v for k, v in asdict(self).items() if k not in ("n_rounds", "features")}
        return {"objective": "binary:logistic", "multi_strategy": "one_output_per_tree", **booster}


@dataclass(frozen=True)
class TrainingReport:
    """What one training step cost and saw; a model's ``history`` holds one per step, parents first.

    ``start_round`` is the parent's round count (0 for a stateless step); ``seconds`` is the step's wall time,
    featurizing included. ``genres_held`` had labels all alike in this step's rows and were left as they were.
    """

    mode: str
    rows: int
    skipped_unlabeled: int
    start_round: int
    rounds: int
    trees_added: int
    featurize_seconds: float
    boost_seconds: float
    seconds: float
    config_version: str
    genres_held: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class XGBModel:
    """A genre booster with everything needed to featurize for it, predict with it, and continue it."""

    booster: xgb.Booster
    config: XGBConfig
    genres: tuple[str, ...]
    history: tuple[TrainingReport, ...]

    @property
    def features(self) -> FeatureSpec:
        """The feature space the booster reads."""
        return self.config.features

    @property
    def report(self) -> TrainingReport:
        """The latest training step's report."""
        return self.history[-1]

    @property
    def n_rounds(self) -> int:
        """Boosting rounds in the booster, parents' included."""
        return self.booster.num_boosted_rounds()

    @property
    def n_trees(self) -> int:
        """Trees across all genres: one per genre per round."""
        return self.n_rounds * len(self.genres)

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        """A float32 ``(rows, len(genres))`` matrix of genre probabilities, in ``genres`` order."""
        import xgboost as xgb

        if frame.is_empty():
            return np.zeros((0, len(self.genres)), dtype=np.float32)
        matrix = xgb.DMatrix(featurize(frame, self.features), nthread=self.config.nthread)
        return self.booster.predict(matrix).reshape(frame.height, len(self.genres))

    def predict(self, frame: pl.DataFrame, threshold: float = 0.5) -> list[list[str]]:
        """Each movie's genres at or above ``threshold``, most likely first; at least the most likely one."""
        predicted = []
        for row in self.predict_proba(frame):
            order = np.argsort(-row, kind="stable")
            predicted.append([self.genres[i] for i in order if row[i] >= threshold] or [self.genres[order[0]]])
        return predicted

    def save(self, folder: Path) -> dict[str, Path]:
        """Write ``booster.ubj`` and then ``model.json`` (last, so a folder with a manifest is complete)."""
        import xgboost as xgb

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"booster": folder / "booster.ubj", "manifest": folder / "model.json"}
        self.booster.save_model(paths["booster"])
        manifest = {
            "format": MODEL_FORMAT,
            "genres": list(self.genres),
            "features_version": self.features.version,
            "config_version": self.config.version,
            "config": asdict(self.config),
            "n_rounds": self.n_rounds,
            "n_trees": self.n_trees,
            "history": [asdict(report) for report in self.history],
            "xgboost_version": xgb.__version__,
        }
        paths["manifest"].write_text(json.dumps(manifest, indent=2) + "\n")
        return paths

    @classmethod
    def load(cls, folder: Path) -> XGBModel:
        """Read a model that ``save`` wrote; refuses one whose features this code would compute differently."""
        import xgboost as xgb

        folder = Path(folder)
        manifest = json.loads((folder / "model.json").read_text())
        if manifest.get("format") != MODEL_FORMAT:
            raise ValueError(f"{folder}: model format {manifest.get('format')!r}, this code reads {MODEL_FORMAT}")
        config = XGBConfig(**manifest["config"])
        if config.features.version != manifest["features_version"]:
            raise ValueError(
                f"{folder}: trained on features version {manifest['features_version']}, but this code computes "
                f"version {config.features.version} for the same spec (the featurizer changed); train it again"
            )
        booster = xgb.Booster(model_file=str(folder / "booster.ubj"))
        booster.set_param({"nthread": config.nthread})
        history = tuple(
            TrainingReport(**{**r, "genres_held": tuple(r["genres_held"])})
            for r in manifest["history"]
        )
        return cls(booster=booster, config=config, genres=tuple(manifest["genres"]), history=history)


def train_stateless(frame: pl.DataFrame, config: XGBConfig, genres: tuple[str, ...] = CANONICAL_GENRES) -> XGBModel:
    """A new model boosted ``config.n_rounds`` rounds on a training window's labeled rows."""
    return _boost(None, frame, config, tuple(genres), config.n_rounds)


def train_stateful(
    parent: XGBModel,
    new_rows: pl.DataFrame,
    config: XGBConfig,
    extra_rounds: int,
    genres: tuple[str, ...] = CANONICAL_GENRES,
) -> XGBModel:
    """The parent boosted ``extra_rounds`` more rounds on only ``new_rows``; the parent itself is unchanged.

    The parent's trees and intercepts are kept as they are. ``config`` may change hyperparameters (a smaller
    ``eta`` for fine-tuning, say) but not the feature spec or the genres, which would change what the parent's
    trees mean.
    """
    if config.features.version != parent.features.version:
        raise ValueError(
            f"the parent model reads features version {parent.features.version}, the config asks for "
            f"{config.features.version}; a changed feature spec starts a new model iteration: train stateless"
        )
    if tuple(genres) != parent.genres:
        raise ValueError(
            f"the parent model predicts {list(parent.genres)}, the label space is now {list(genres)}; "
            "a changed genre list starts a new model iteration: train stateless"
        )
    if extra_rounds < 1:
        raise ValueError(f"extra_rounds must be at least 1; got {extra_rounds!r}")
    return _boost(parent, new_rows, config, parent.genres, extra_rounds)


def _boost(
    parent: XGBModel | None, frame: pl.DataFrame, config: XGBConfig, genres: tuple[str, ...], rounds: int
) -> XGBModel:
    """Boost ``rounds`` rounds on the frame's labeled rows, from scratch or from the parent, and time it."""
    import xgboost as xgb

    started = time.perf_counter()
    dtrain, labels, skipped = _training_matrix(frame, config, genres)
    featurized = time.perf_counter()
    params = config.params()
    if parent is None:
        intercepts = _intercepts(labels)
        params["base_score"] = intercepts.tolist()
        current = np.broadcast_to(intercepts, labels.shape)
    else:
        # No base_score: the parent's intercepts are part of what its trees were fitted against.
        current = parent.booster.predict(dtrain).reshape(labels.shape) if _held(labels).any() else labels
    dtrain.set_label(_targets(labels, current))
    booster = xgb.train(params, dtrain, num_boost_round=rounds, xgb_model=parent.booster if parent else None)
    finished = time.perf_counter()
    report = TrainingReport(
        mode="stateless" if parent is None else "stateful",
        rows=len(labels),
        skipped_unlabeled=skipped,
        start_round=parent.n_rounds if parent else 0,
        rounds=rounds,
        trees_added=rounds * len(genres),
        featurize_seconds=featurized - started,
        boost_seconds=finished - featurized,
        seconds=finished - started,
        config_version=config.version,
        genres_held=tuple(g for g, held in zip(genres, _held(labels)) if held),
    )
    history = (parent.history if parent else ()) + (report,)
    return XGBModel(booster=booster, config=config, genres=genres, history=history)


def _training_matrix(
    frame: pl.DataFrame, config: XGBConfig, genres: tuple[str, ...]
) -> tuple[xgb.DMatrix, np.ndarray, int]:
    """The labeled rows as a DMatrix (targets are set by the caller), their labels, and how many were unlabeled.

    A movie with no genre in the label space is unlabeled, not a movie of no genre, so it teaches nothing.
    """
    import xgboost as xgb

    labels = label_matrix(frame, genres)
    labeled = labels.sum(axis=1) > 0
    if not labeled.any():
        raise ValueError(f"none of the {frame.height} rows has a genre among {list(genres)}; nothing to train on")
    features = featurize(frame.filter(pl.Series(labeled)), config.features)
    return xgb.DMatrix(features, nthread=config.nthread), labels[labeled], int((~labeled).sum())


def _held(labels: np.ndarray) -> np.ndarray:
    """Per genre: are its labels all alike (no positives, or nothing but), so that they cannot tell movies apart?"""
    positives = labels.sum(axis=0)
    return (positives == 0) | (positives == len(labels))


def _targets(labels: np.ndarray, current: np.ndarray) -> np.ndarray:
    """The labels as boosting targets, with held genres' columns replaced by the current probabilities."""
    targets = labels.astype(np.float32)
    held = _held(labels)
    targets[:, held] = current[:, held]
    return targets


def _intercepts(labels: np.ndarray) -> np.ndarray:
    """Each genre's starting probability: its prevalence, kept inside [MIN_INTERCEPT, MAX_INTERCEPT]."""
    return np.clip(labels.mean(axis=0), MIN_INTERCEPT, MAX_INTERCEPT)

"""One face for both genre model families: load a saved model, score movies, and turn scores into genres.

The families store and predict differently (an XGBoost booster folder, a transformers checkpoint folder), but
evaluation, gates and serving only need ``predict_proba`` over a polars movie frame and the label order, so
they take a ``GenreModel`` and never ask which family it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import polars as pl

XGBOOST, TRANSFORMER = "xgboost", "transformer"
FAMILIES: tuple[str, ...] = (XGBOOST, TRANSFORMER)
DEFAULT_THRESHOLD = 0.5


class GenreModel(Protocol):
    @property
    def genres(self) -> tuple[str, ...]: ...

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray: ...


def check_family(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of: {', '.join(FAMILIES)}")
    return family


def load(family: str, path: str | Path, device: str = "auto") -> GenreModel:
    """The model saved at ``path`` (check its checksum first: ``registry.load_artifact``)."""
    if check_family(family) == XGBOOST:
        from trending_assets.lib.xgb_trainer import XGBModel

        return XGBModel.load(Path(path))
    from trending_assets.lib.transformer_model import TransformerModel

    return TransformerModel.load(path, device=device)


def load_version(version, device: str = "auto") -> GenreModel:
    """A registered version's model, after checking its artifact's checksum (``registry.ArtifactError`` if the
    files are missing or changed)."""
    from trending_assets.lib import registry

    return load(version.family, registry.load_artifact(version), device=device)


def load_alias(con, alias: str, device: str = "auto") -> tuple[str, GenreModel]:
    """The version an alias points at and its model, e.g. ``load_alias(con, "champion")``; LookupError when the
    alias was never set or has been removed."""
    from trending_assets.lib import registry

    version = registry.resolve_alias(con, alias)
    if version is None:
        raise LookupError(f"alias {alias!r} was removed and points at no model; set it with registry.set_alias")
    return version.version_id, load_version(version, device=device)


def threshold_of(model: GenreModel) -> float:
    """The decision threshold the model was trained for (the transformer's card carries one)."""
    card = getattr(model, "card", None)
    return float(card.config.threshold) if card is not None else DEFAULT_THRESHOLD


def to_labels(probs: np.ndarray, threshold: float) -> np.ndarray:
    """0/1 genres from probabilities: every genre at or above ``threshold``, else the single likeliest one.

    Every movie has at least one genre, so a model never scores by abstaining.
    """
    labels = (probs >= threshold).astype(np.int8)
    if probs.shape[0]:
        empty = labels.sum(axis=1) == 0
        labels[empty, probs[empty].argmax(axis=1)] = 1
    return labels


def margins(model: GenreModel, frame: pl.DataFrame) -> pl.DataFrame:
    """(movie_id, margin): how close each movie's least certain genre decision is to the model's threshold
    (0: a coin flip). What uncertainty sampling ranks by (``sampling.sample``)."""
    probs = model.predict_proba(frame)
    margin = np.abs(probs - threshold_of(model)).min(axis=1) if probs.shape[0] else np.zeros(0)
    return pl.DataFrame({"movie_id": frame["movie_id"], "margin": margin.astype(np.float64)})


def predict_labels(model: GenreModel, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and 0/1 genres for each movie in ``frame``, columns in ``model.genres`` order."""
    probs = model.predict_proba(frame)
    return probs, to_labels(probs, threshold_of(model))

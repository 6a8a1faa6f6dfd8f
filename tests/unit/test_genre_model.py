"""Loading a model by alias: the registry resolves the alias, checks the artifact's checksum, and the family's
loader reads it; a changed or missing artifact is refused with a clear error, never loaded."""

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from tests.unit.test_training import XGB_CONFIG, movies
from trending_assets.lib import genre_model, registry, training
from trending_assets.lib.retrain_policy import TrainingDecision
from trending_assets.lib.warehouse import connect


@pytest.fixture()
def champion(tmp_path):
    """A tiny XGBoost model registered and aliased champion: (warehouse path, version, training rows)."""
    rows = movies(60, date(2024, 1, 1), "m")
    decision = TrainingDecision("stateless", "first model", None, 0)
    trained = training.train_xgboost(decision, rows, None, XGB_CONFIG, 1, tmp_path / "model")
    with connect(tmp_path / "w.duckdb") as con:
        version = training.register(con, trained, "w-1", every_k=5)
        registry.set_alias(con, "champion", version.version_id, "person:test", "first")
    return tmp_path / "w.duckdb", version, rows


def test_the_champion_loads_by_alias_and_predicts(champion):
    db, version, rows = champion
    with connect(db) as con:
        loaded_id, model = genre_model.load_alias(con, "champion")
    probs, labels = genre_model.predict_labels(model, rows)
    assert loaded_id == version.version_id
    assert probs.shape == labels.shape == (rows.height, len(model.genres))
    assert (labels.sum(axis=1) >= 1).all() and np.isfinite(probs).all()


def test_a_changed_artifact_is_refused_by_checksum(champion):
    db, version, _ = champion
    booster = Path(version.artifact_path) / "booster.ubj"
    booster.write_bytes(booster.read_bytes()[:-10])
    with connect(db) as con, pytest.raises(registry.ArtifactError, match="has changed since it was registered"):
        genre_model.load_alias(con, "champion")


def test_a_removed_alias_loads_nothing(champion):
    db, version, _ = champion
    with connect(db) as con:
        registry.set_alias(con, "champion", None, "person:test", "withdrawn")
        with pytest.raises(LookupError, match="'champion' was removed"):
            genre_model.load_alias(con, "champion")


def test_margins_rank_the_least_certain_decision_of_each_movie(champion):
    db, _, rows = champion
    with connect(db) as con:
        _, model = genre_model.load_alias(con, "champion")
    margins = genre_model.margins(model, rows)
    probs = model.predict_proba(rows)
    assert margins["movie_id"].to_list() == rows["movie_id"].to_list()
    assert np.allclose(margins["margin"].to_numpy(), np.abs(probs - 0.5).min(axis=1))
    assert margins["margin"].is_between(0, 0.5).all()

"""One training step of a model family: which parent it continues, stateless or stateful, which rows it trains on,
and what the registry row says about it afterwards.

The registry and the training windows live in a real DuckDB file; the models are tiny but real (a 5-round
booster, a 2-layer BERT built here from a 20-word vocabulary).
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from trending_assets.lib import registry, window_store
from trending_assets.lib.features import FeatureSpec
from trending_assets.lib.registry_schema import ModelVersion
from trending_assets.lib.retrain_policy import STATEFUL, STATELESS
from trending_assets.lib.training import (
    Parent,
    already_trained,
    decide,
    find_parent,
    new_since,
    register,
    train_transformer,
    train_xgboost,
)
from trending_assets.lib.warehouse import connect
from trending_assets.lib.xgb_trainer import XGBConfig, XGBModel

NOW = datetime(2024, 3, 1, 12, 0)
WINDOW_END = date(2024, 1, 31)
CODE = "code-a"
# Each genre's movies mention its tell-tale word among a few filler words.
TELLS = {"horror": "ghost", "romance": "love", "comedy": "joke", "western": "cowboy", "war": "soldier"}
FILLER = "a the story of an old town where people live".split()
XGB_CONFIG = XGBConfig(n_rounds=5, max_depth=3, eta=0.3, nthread=1, features=FeatureSpec(n_hash_features=2**10))


def movies(n: int, first_seen: date, prefix: str, seed: int = 0) -> pl.DataFrame:
    """``n`` movies first seen on consecutive days from ``first_seen``, with every column a window carries."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        picked = rng.sample(sorted(TELLS), rng.choice([1, 1, 2]))
        words = [rng.choice(FILLER) for _ in range(4)] + [TELLS[g] for g in picked]
        rng.shuffle(words)
        seen = first_seen + timedelta(days=i % 10)
        rows.append({
            "movie_id": f"{prefix}-{i}", "title": "movie", "overview": " ".join(words), "genres": picked,
            "first_seen_date": seen, "scraped_at": datetime.combine(seen, datetime.min.time()),
            "release_year": 2000 + i % 20, "source": "tmdb", "language": "en", "popularity": float(i % 7),
            "vote_average": 6.5, "vote_count": 10 * i, "runtime_minutes": 100,
        })
    return pl.DataFrame(rows, schema_overrides={"genres": pl.List(pl.String)})


OLD = movies(60, date(2024, 1, 10), "old", seed=1)  # first seen Jan 10-19: inside the parent's window
NEW = movies(20, date(2024, 2, 1), "new", seed=2)  # first seen Feb 1-10: after it


def record_window(con, window_id: str, rows: pl.DataFrame, end: date | None, path: Path | None = None,
                  kind: str = "training") -> None:
    window_store.record(con, window_id=window_id, kind=kind, rows=rows, path=path or Path(f"/windows/{window_id}"),
                        rows_per_genre={}, start=None, end=end, now=NOW)


def add_version(con, folder: Path, family: str, window_id: str, stage: str = "candidate") -> ModelVersion:
    """A registered version with a throwaway artifact, moved forward to ``stage``."""
    artifact = folder / f"{family}-{window_id}-{len(registry.list_versions(con))}.bin"
    artifact.write_bytes(b"weights")
    version = registry.register(con, family, artifact, "stateless", "test", None, window_id, CODE, {}, {}, NOW)
    for step in {"candidate": [], "staging": ["staging"], "production": ["staging", "production"]}[stage]:
        version = registry.set_stage(con, version.version_id, step, "person:test", "test", NOW)
    return version


def model_version(version_id: str = "xgboost-v1", window_id: str = "w-jan", code_version: str = CODE,
                  updates_since_stateless: int = 0) -> ModelVersion:
    """A registry row as ``registry.get`` returns it, for the policy tests that need no database."""
    family, number = version_id.split("-v")
    return ModelVersion(
        version_id=version_id, family=family, version_number=int(number), created_at=NOW, stage="staging",
        training_mode=STATELESS, training_reason="test", parent_version=None, window_id=window_id,
        code_version=code_version, hyperparameters={"policy": {"updates_since_stateless": updates_since_stateless}},
        artifact_path="/models/unused", artifact_sha256="0" * 64, metrics={}, notes=None,
    )


def parent(**overrides) -> Parent:
    return Parent(model_version(**overrides), WINDOW_END, None)


@pytest.fixture()
def con(tmp_path: Path):
    with connect(tmp_path / "warehouse.duckdb") as connection:
        yield connection


# -- find_parent -------------------------------------------------------------------------------------------

def test_no_parent_in_an_empty_registry(con):
    assert find_parent(con, "xgboost") is None


def test_the_champion_is_the_parent_when_it_is_of_the_family(con, tmp_path):
    record_window(con, "w-jan", OLD, WINDOW_END, tmp_path / "w-jan.parquet")
    record_window(con, "w-feb", NEW, date(2024, 2, 29))
    champion = add_version(con, tmp_path, "xgboost", "w-jan")
    add_version(con, tmp_path, "xgboost", "w-feb", stage="staging")  # newer, but the champion comes first
    registry.set_alias(con, "champion", champion.version_id, "person:test", "first champion", NOW)

    found = find_parent(con, "xgboost")

    assert found.version.version_id == champion.version_id
    assert (found.window_end, found.window_path) == (WINDOW_END, tmp_path / "w-jan.parquet")


def test_under_another_familys_champion_the_parent_is_the_newest_gated_version(con, tmp_path):
    for window_id, end in [("w-jan", WINDOW_END), ("w-feb", date(2024, 2, 29)), ("w-mar", date(2024, 3, 31))]:
        record_window(con, window_id, OLD, end)
    champion = add_version(con, tmp_path, "transformer", "w-mar")
    registry.set_alias(con, "champion", champion.version_id, "person:test", "first champion", NOW)
    add_version(con, tmp_path, "xgboost", "w-jan", stage="production")
    staged = add_version(con, tmp_path, "xgboost", "w-feb", stage="staging")
    add_version(con, tmp_path, "xgboost", "w-mar")  # a candidate has not passed the offline gates

    found = find_parent(con, "xgboost")

    assert (found.version.version_id, found.window_end) == (staged.version_id, date(2024, 2, 29))
    assert find_parent(con, "transformer").version.version_id == champion.version_id


def test_a_version_without_a_recorded_training_window_is_passed_over(con, tmp_path):
    record_window(con, "w-jan", OLD, WINDOW_END)
    record_window(con, "w-feb", NEW, date(2024, 2, 29), kind="backtest")  # same id, but not a training window
    older = add_version(con, tmp_path, "xgboost", "w-jan", stage="staging")
    add_version(con, tmp_path, "xgboost", "w-feb", stage="staging")

    assert find_parent(con, "xgboost").version.version_id == older.version_id


def test_find_parent_refuses_an_unknown_family(con):
    with pytest.raises(ValueError, match="unknown model family 'lightgbm'"):
        find_parent(con, "lightgbm")


# -- new rows and repeated runs ----------------------------------------------------------------------------

def test_new_since_keeps_the_movies_first_seen_after_the_parents_window():
    on_the_last_day = movies(1, WINDOW_END, "edge")
    window = pl.concat([OLD, on_the_last_day, NEW])

    assert new_since(window, None).height == window.height
    assert new_since(window, parent())["movie_id"].to_list() == NEW["movie_id"].to_list()


def test_already_trained_finds_the_newest_live_version_of_the_same_window_and_code_version(con, tmp_path):
    first = add_version(con, tmp_path, "xgboost", "w-jan")
    second = add_version(con, tmp_path, "xgboost", "w-jan", stage="staging")
    add_version(con, tmp_path, "transformer", "w-feb")

    assert already_trained(con, "xgboost", "w-jan", CODE).version_id == second.version_id
    registry.set_stage(con, second.version_id, "archived", "person:test", "retired", NOW)
    assert already_trained(con, "xgboost", "w-jan", CODE).version_id == first.version_id
    assert already_trained(con, "xgboost", "w-feb", CODE) is None  # another window
    assert already_trained(con, "xgboost", "w-jan", "code-b") is None  # another recipe
    assert already_trained(con, "transformer", "w-jan", CODE) is None  # another family's run


def test_already_trained_on_an_empty_registry_is_none(con):
    assert already_trained(con, "xgboost", "w-jan", CODE) is None


# -- decide ------------------------------------------------------------------------------------------------

def test_without_a_parent_training_is_stateless():
    decision = decide("xgboost", CODE, None, new_rows=100, every_k=5, force=None)
    assert (decision.mode, decision.parent_version, decision.updates_since_stateless) == (STATELESS, None, 0)


def test_a_compatible_parent_with_new_movies_is_continued():
    decision = decide("xgboost", CODE, parent(updates_since_stateless=1), new_rows=20, every_k=5, force=None)
    assert (decision.mode, decision.parent_version, decision.updates_since_stateless) == (STATEFUL, "xgboost-v1", 2)


def test_nothing_new_since_the_parent_means_stateless():
    decision = decide("xgboost", CODE, parent(), new_rows=0, every_k=5, force=None)
    assert (decision.mode, decision.parent_version, decision.updates_since_stateless) == (STATELESS, None, 0)
    assert "no movie newer than xgboost-v1's window (ended 2024-01-31)" in decision.reason


def test_forcing_stateful_with_nothing_new_is_refused():
    with pytest.raises(ValueError, match="forced stateful, but no movie in the window is newer than xgboost-v1"):
        decide("xgboost", CODE, parent(), new_rows=0, every_k=5, force=STATEFUL)


def test_a_changed_code_version_retrains_from_scratch():
    decision = decide("xgboost", "code-b", parent(), new_rows=20, every_k=5, force=None)
    assert decision.mode == STATELESS and "model iteration" in decision.reason


def test_every_kth_update_is_stateless():
    third = parent(updates_since_stateless=2)
    assert decide("xgboost", CODE, third, new_rows=20, every_k=3, force=None).mode == STATELESS
    assert decide("xgboost", CODE, third, new_rows=20, every_k=4, force=None).mode == STATEFUL


# -- XGBoost end to end ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def xgb_lineage(tmp_path_factory):
    """A stateless xgboost on January's window, then a stateful child on a window that adds February."""
    root = tmp_path_factory.mktemp("xgb")
    with connect(root / "warehouse.duckdb") as con:
        record_window(con, "w-jan", OLD, WINDOW_END)
        first = decide("xgboost", XGB_CONFIG.version, find_parent(con, "xgboost"), OLD.height, 5, None)
        trained_parent = train_xgboost(first, OLD, None, XGB_CONFIG, 3, root / "parent")
        registered_parent = register(con, trained_parent, "w-jan", every_k=5)
        registry.set_stage(con, registered_parent.version_id, "staging", "job:gates", "passed", NOW)

        window = pl.concat([OLD, NEW])
        record_window(con, "w-feb", window, date(2024, 2, 29))
        found = find_parent(con, "xgboost")
        second = decide("xgboost", XGB_CONFIG.version, found, new_since(window, found).height, 5, None)
        trained_child = train_xgboost(second, window, found, XGB_CONFIG, 3, root / "child")
        registered_child = register(con, trained_child, "w-feb", every_k=5)
    return trained_parent, registered_parent, trained_child, registered_child


def test_xgboost_stateless_trains_the_whole_window(xgb_lineage):
    trained, registered, _, _ = xgb_lineage
    assert trained.decision.mode == STATELESS
    assert (trained.metrics["train_rows"], trained.metrics["n_rounds"], trained.rows_new) == (60, 5, 60)
    assert registered.training_mode == STATELESS and registered.parent_version is None
    assert registered.hyperparameters["policy"] == {"every_k": 5, "updates_since_stateless": 0}


def test_xgboost_stateful_child_continues_the_parent_on_the_new_movies_only(xgb_lineage):
    trained_parent, _, trained, _ = xgb_lineage

    assert trained.decision.mode == STATEFUL
    assert trained.metrics["train_rows"] == trained.rows_new == NEW.height
    assert trained.metrics["rounds_added"] == 3
    assert trained.metrics["n_rounds"] == trained_parent.metrics["n_rounds"] + 3
    child_model = XGBModel.load(trained.artifact)
    assert child_model.n_rounds == 8 and [r.mode for r in child_model.history] == [STATELESS, STATEFUL]
    assert sorted(p.name for p in trained.artifact.iterdir()) == ["booster.ubj", "model.json"]


def test_register_records_the_lineage_and_the_policy_state(xgb_lineage):
    _, registered_parent, trained, registered = xgb_lineage

    assert registered.version_id == "xgboost-v2" and registered.stage == "candidate"
    assert (registered.training_mode, registered.parent_version) == (STATEFUL, registered_parent.version_id)
    assert registered.training_reason == trained.decision.reason
    assert registered.training_reason.startswith("stateful: continues xgboost-v1")
    assert registered.hyperparameters["policy"] == {"every_k": 5, "updates_since_stateless": 1}
    assert registered.hyperparameters["extra_rounds"] == 3
    assert registered.hyperparameters["config"]["features"]["n_hash_features"] == 2**10
    assert registered.code_version == XGB_CONFIG.version
    assert registered.metrics["train_rows"] == NEW.height


# -- transformer end to end --------------------------------------------------------------------------------

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "movie", *TELLS.values(), *FILLER]


def make_tiny_base(directory: Path, seed: int = 0) -> Path:
    """A randomly initialised tiny BERT and its tokenizer, saved like the bundled MiniLM (a bare encoder)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    BertTokenizerFast(vocab={word: i for i, word in enumerate(VOCAB)}).save_pretrained(directory)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def transformer_lineage(tmp_path_factory):
    """A stateless transformer on January's window, then a stateful child on a window of February's movies only:
    what it replays must come from the parent's window file."""
    import torch

    from trending_assets.lib.transformer_model import TransformerConfig

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # too small to gain from intra-op threads; spin-waits hurt on a busy runner
    root = tmp_path_factory.mktemp("transformer")
    base = make_tiny_base(root / "base")
    config = TransformerConfig(max_rows=24, max_length=16, epochs=1, batch_size=8, device="cpu")
    try:
        with connect(root / "warehouse.duckdb") as con:
            OLD.write_parquet(root / "w-jan.parquet")
            record_window(con, "w-jan", OLD, WINDOW_END, root / "w-jan.parquet")
            first = decide("transformer", config.version, None, OLD.height, 5, None)
            trained_parent = train_transformer(first, OLD, None, config, base, root / "parent")
            registered_parent = register(con, trained_parent, "w-jan", every_k=5)
            registry.set_stage(con, registered_parent.version_id, "staging", "job:gates", "passed", NOW)

            record_window(con, "w-feb", NEW, date(2024, 2, 29))
            found = find_parent(con, "transformer")
            second = decide("transformer", config.version, found, new_since(NEW, found).height, 5, None)
            trained_child = train_transformer(second, NEW, found, config, base, root / "child")
            registered_child = register(con, trained_child, "w-feb", every_k=5)
    finally:
        torch.set_num_threads(threads)
    return trained_parent, registered_parent, trained_child, registered_child


def test_transformer_stateless_fine_tunes_the_base_on_the_window(transformer_lineage):
    trained, registered, _, _ = transformer_lineage

    assert trained.decision.mode == STATELESS
    assert (trained.metrics["rows_new"], trained.metrics["rows_replay"]) == (24, 0)  # max_rows of 60
    assert trained.metrics["steps"] == 3 and trained.metrics["device"] == "cpu"
    assert registered.hyperparameters["policy"]["updates_since_stateless"] == 0
    assert (trained.artifact / "trending_model.json").is_file()


def test_transformer_stateful_child_replays_the_parents_window(transformer_lineage):
    from trending_assets.lib.transformer_model import TransformerModel

    _, registered_parent, trained, registered = transformer_lineage

    assert trained.decision.mode == STATEFUL and trained.rows_new == NEW.height
    # None of January's movies is in February's window: all replay comes from the parent's window file. With
    # max_rows 24 and replay_share 0.3, 7 rows are kept for replay, so 17 of the 20 new movies fit.
    assert (trained.metrics["rows_new"], trained.metrics["rows_replay"]) == (17, 7)
    card = TransformerModel.load(trained.artifact, device="cpu").card
    assert (card.parent_id, card.generation) == (registered_parent.hyperparameters["model_id"], 1)
    assert (registered.training_mode, registered.parent_version) == (STATEFUL, registered_parent.version_id)
    assert registered.hyperparameters["policy"]["updates_since_stateless"] == 1
    assert registered.metrics["rows_replay"] == 7


def test_without_the_parents_window_file_replay_comes_from_the_window_alone(transformer_lineage, tmp_path):
    from trending_assets.lib.transformer_model import TransformerConfig

    _, registered_parent, _, _ = transformer_lineage
    config = TransformerConfig(max_rows=24, max_length=16, epochs=1, batch_size=8, device="cpu")
    lost = Parent(registered_parent, WINDOW_END, tmp_path / "deleted.parquet")
    decision = decide("transformer", config.version, lost, NEW.height, 5, None)
    base = Path(registered_parent.hyperparameters["base"])

    only_new = train_transformer(decision, NEW, lost, config, base, tmp_path / "a")
    with_old = train_transformer(decision, pl.concat([OLD.head(5), NEW]), lost, config, base, tmp_path / "b")

    assert only_new.metrics["rows_replay"] == 0
    assert (with_old.metrics["rows_new"], with_old.metrics["rows_replay"]) == (19, 5)  # the 5 old ones, 19 new fit


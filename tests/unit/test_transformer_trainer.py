"""The genre transformer trainer: learning, warm starts with replay, lineage checks, bounds, saving, determinism.

Every test but the last trains a tiny BERT (hidden 32, 2 layers) built here from a 24-word vocabulary, on a toy
task where each genre has one tell-tale word in the overview. The last loads the real bundled MiniLM offline and
takes one step, to prove the production path works without a network.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

from trending_assets.lib.genres import CANONICAL_GENRES
from trending_assets.lib.transformer_model import labels_from_probs, micro_f1, resolve_device
from trending_assets.lib.transformer_trainer import (
    TransformerConfig,
    TransformerModel,
    default_base_dir,
    evaluate_f1,
    plan_rows,
    train_stateful,
    train_stateless,
)

TELLS = {"horror": "ghost", "romance": "love", "comedy": "joke", "science_fiction": "space", "western": "cowboy",
         "war": "soldier"}
FILLER = "a the story of an old town where people live and".split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "movie", *TELLS.values(), *FILLER]
# From scratch, a tiny BERT with the usual 0.02 init and dropout collapses to predicting base rates for hundreds
# of steps; a wider init without dropout learns the toy task in about 150.
TOY = TransformerConfig(epochs=10, learning_rate=3e-3, batch_size=16, max_length=32, warmup_ratio=0.0,
                        log_every_steps=5)
SCHEMA = {"movie_id": pl.String, "title": pl.String, "overview": pl.String, "genres": pl.List(pl.String)}


def toy_movies(n: int, seed: int, genres: tuple[str, ...] = tuple(TELLS), filler: int = 3) -> pl.DataFrame:
    """n movies with one or two of ``genres``, each named by its tell-tale word among ``filler`` other words."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        picked = rng.sample(genres, rng.choice([1, 1, 2]))
        words = [rng.choice(FILLER) for _ in range(filler)] + [TELLS[g] for g in picked]
        rng.shuffle(words)
        rows.append({"movie_id": f"s{seed}-{i}", "title": "movie", "overview": " ".join(words), "genres": picked})
    return pl.DataFrame(rows, schema=SCHEMA)


def make_tiny_base(directory: Path, seed: int) -> Path:
    """A randomly initialised tiny BERT and its tokenizer, saved like the bundled MiniLM (a bare encoder)."""
    tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(VOCAB)})
    tokenizer.save_pretrained(directory)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, initializer_range=0.2,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These models are too small to gain from intra-op threads, and on a busy runner spin-waits cost 10x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return make_tiny_base(tmp_path_factory.mktemp("tiny-base"), seed=0)


@pytest.fixture(scope="module")
def trained(base):
    """One stateless run on the toy task, shared by the tests that only read it: (model, report, log lines)."""
    lines: list[str] = []
    model, report = train_stateless(toy_movies(256, seed=0), base, TOY, log=lines.append)
    return model, report, lines


def parameters(model: TransformerModel) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.network.state_dict().items()}


def test_stateless_training_learns_the_toy_task(trained):
    model, report, _ = trained
    held_out = toy_movies(200, seed=1)
    truth = np.array([[g in genres for g in model.genres] for genres in held_out["genres"]])
    always_likeliest = np.zeros_like(truth)
    always_likeliest[:, truth.sum(axis=0).argmax()] = True

    assert report.final_loss < report.first_loss / 3
    assert evaluate_f1(model, held_out) > max(0.6, 2 * micro_f1(truth, always_likeliest))
    assert model.predict(held_out[:1]) == [held_out["genres"][0].to_list()]


def test_report_counts_and_progress_lines(trained):
    model, report, lines = trained

    assert (report.mode, report.rows_new, report.rows_replay, report.epochs) == ("stateless", 256, 0, 10)
    assert (report.steps, report.examples_seen) == (160, 2560)
    assert report.examples_per_second > 0 and report.wall_seconds >= report.train_seconds > 0
    progress = [line for line in lines if line.startswith("step ")]
    assert len(progress) == 160 // 5
    assert progress[0].startswith("step 5/160 (epoch 1/10): loss ") and "movies/s on cpu" in progress[0]
    assert f"final loss {report.final_loss:.4f}" in lines[-1]
    assert (model.card.parent_id, model.card.generation, model.card.model_id) == (None, 0, report.model_id)


def test_device_auto_picks_cuda_only_when_torch_sees_one(trained, monkeypatch):
    assert trained[1].device == "cpu" == resolve_device("auto").type  # the project's torch is a CPU build
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
    with pytest.raises(ValueError, match="'gpu0' is not a torch device"):
        TransformerConfig(device="gpu0")


def test_save_and_load_give_identical_probabilities(trained, tmp_path):
    model = trained[0]
    movies = toy_movies(20, seed=5)

    loaded = TransformerModel.load(model.save(tmp_path / "model"), device="cpu")

    assert np.array_equal(loaded.predict_proba(movies), model.predict_proba(movies))
    assert loaded.card == model.card
    files = {path.name for path in (tmp_path / "model").iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "trending_model.json"} <= files
    assert not any(name.endswith((".pkl", ".bin", ".pt")) for name in files)


def test_load_explains_a_directory_without_a_card(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trending_model.json"):
        TransformerModel.load(tmp_path)


def test_stateful_child_starts_from_the_parent_and_leaves_it_untouched(trained, base):
    parent = trained[0]
    before = parameters(parent)
    new, replay = toy_movies(48, seed=2), toy_movies(200, seed=3)

    frozen, _ = train_stateful(parent, new, replay,
                               TransformerConfig(learning_rate=0.0, head_learning_rate=0.0, max_length=32),
                               base_dir=base)
    child, report = train_stateful(parent, new, replay, TransformerConfig(epochs=2, learning_rate=1e-3, max_length=32),
                                   base_dir=base)
    _, cold = train_stateless(new, base, TransformerConfig(epochs=1, max_length=32))

    # With a zero learning rate nothing moves, so the child's weights are exactly where it started: the parent's.
    assert all(torch.equal(tensor, before[name]) for name, tensor in parameters(frozen).items())
    assert any(not torch.equal(tensor, before[name]) for name, tensor in parameters(child).items())
    assert all(torch.equal(tensor, before[name]) for name, tensor in parameters(parent).items())
    assert report.first_loss < cold.first_loss / 2  # it already knew the task on its first batch
    assert (child.card.parent_id, child.card.generation, report.mode) == (parent.card.model_id, 1, "stateful")
    assert evaluate_f1(child, toy_movies(200, seed=1)) > 0.6


def test_stateful_mixes_in_a_replay_share_of_older_movies(trained, base):
    lines: list[str] = []
    new = toy_movies(40, seed=2, genres=("horror", "romance"))
    replay = pl.concat([toy_movies(200, seed=3), new.head(5).with_columns(pl.lit(["war"]).alias("genres"))])

    _, report = train_stateful(trained[0], new, replay, TransformerConfig(epochs=2, max_length=32, replay_share=0.3),
                               log=lines.append, base_dir=base)

    # 40 new movies are 70% of the run, so 17 older ones (of 200 once the 5 relabelled ones are dropped) are 30%.
    assert (report.rows_new, report.rows_replay, report.examples_seen) == (40, 17, 2 * 57)
    assert "40 new + 17 replay movies (30% replay, asked 30%)" in lines[0]


@pytest.mark.parametrize(
    ("n_new", "n_replay", "max_rows", "share", "expected"),
    [
        (5000, 5000, 2000, 0.3, (1400, 600)),  # the budget split by share
        (40, 200, 2000, 0.3, (40, 17)),  # few new movies: replay sized to their share
        (5000, 10, 2000, 0.3, (1990, 10)),  # little to replay: new movies fill the budget
        (40, 0, 2000, 0.3, (40, 0)),
        (40, 200, 2000, 0.0, (40, 0)),
        (100, 100, 10, 0.25, (8, 2)),  # never over max_rows, whatever the rounding
    ],
)
def test_plan_rows(n_new, n_replay, max_rows, share, expected):
    assert plan_rows(n_new, n_replay, TransformerConfig(max_rows=max_rows, replay_share=share)) == expected


def test_stateful_refuses_a_parent_from_another_label_space_or_base(trained, tmp_path):
    parent, movies = trained[0], toy_movies(8, seed=2)
    other_base = make_tiny_base(tmp_path / "other-base", seed=1)
    own_genres = tuple(TELLS)

    with pytest.raises(ValueError, match=r"predicts genres \['action'.*label space is \['horror'"):
        train_stateful(parent, movies, None, TOY, base_dir=other_base, genres=own_genres)
    with pytest.raises(ValueError, match=rf"descends from base .*\(fingerprint {parent.card.base_fingerprint}\) "
                                         rf"but this run's base is {other_base} \(fingerprint [0-9a-f]{{16}}\)"):
        train_stateful(parent, movies, None, TOY, base_dir=other_base)


def test_rows_and_tokens_are_bounded_by_the_config(base):
    wordy = toy_movies(100, seed=4, filler=200)  # ~200 tokens: far past the tiny model's 64 positions
    config = TransformerConfig(max_rows=24, max_length=16, batch_size=8, epochs=1)

    model, report = train_stateless(wordy, base, config)
    _, shuffled = train_stateless(wordy.sample(fraction=1.0, shuffle=True, seed=1), base, config)

    assert (report.rows_new, report.examples_seen, report.steps, report.truncated_rows) == (24, 24, 3, 24)
    assert shuffled.model_id == report.model_id  # the capped sample does not depend on the input's order
    assert model.predict_proba(wordy[:3]).shape == (3, len(CANONICAL_GENRES))


def test_same_seed_gives_the_same_model_on_cpu(base):
    movies = toy_movies(48, seed=6)
    config = TransformerConfig(epochs=2, learning_rate=1e-3, max_length=32)

    first, first_report = train_stateless(movies, base, config)
    again, again_report = train_stateless(movies, base, config)
    other, _ = train_stateless(movies, base, TransformerConfig(epochs=2, learning_rate=1e-3, max_length=32, seed=1))

    assert np.array_equal(first.predict_proba(movies), again.predict_proba(movies))
    assert first_report.model_id == again_report.model_id
    assert not np.array_equal(first.predict_proba(movies), other.predict_proba(movies))


def test_config_version_names_what_shapes_learning():
    assert TransformerConfig().version == TransformerConfig(device="cpu", log_every_steps=1).version
    assert TransformerConfig(learning_rate=1).version == TransformerConfig(learning_rate=1.0).version
    assert TransformerConfig().version != TransformerConfig(learning_rate=1e-4).version
    assert len(TransformerConfig().version) == 8
    with pytest.raises(ValueError, match=r"replay_share must be in \[0, 1\)"):
        TransformerConfig(replay_share=1.0)


def test_predict_falls_back_to_the_likeliest_genre():
    probs = np.array([[0.9, 0.2, 0.6], [0.1, 0.4, 0.3]], dtype=np.float32)
    assert labels_from_probs(probs, ("a", "b", "c"), 0.5) == [["a", "c"], ["b"]]


def test_real_minilm_trains_a_step_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    movies = pl.DataFrame(
        {"movie_id": ["a", "b", "c", "d"], "title": ["Ghost Ship", "Love Actually", "Star Wars", "Unforgiven"],
         "overview": ["A haunted ship drifts at sea.", None, "Rebels fight an empire in space.", "An old gunman."],
         "genres": [["horror"], ["romance", "comedy"], ["science_fiction", "adventure"], ["western"]]},
        schema=SCHEMA,
    )
    config = TransformerConfig(epochs=1, batch_size=4, max_length=32)

    model, report = train_stateless(movies, default_base_dir(), config)

    assert (report.steps, report.examples_seen, report.device) == (1, 4, resolve_device("auto").type)
    assert math.isfinite(report.final_loss)
    assert model.predict_proba(movies).shape == (4, len(CANONICAL_GENRES))


def test_the_new_head_learns_at_its_own_rate_while_the_encoder_stays(trained, base):
    parent = trained[0]
    before = parameters(parent)
    config = TransformerConfig(learning_rate=0.0, head_learning_rate=1e-2, max_length=32)

    child, _ = train_stateful(parent, toy_movies(32, seed=4), None, config, base_dir=base)

    moved = {name for name, tensor in parameters(child).items() if not torch.equal(tensor, before[name])}
    assert moved and all(name.startswith(("classifier.", "bert.pooler.")) for name in moved)

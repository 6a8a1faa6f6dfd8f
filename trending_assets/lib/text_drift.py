"""Drift of free text (movie overviews) and of its embeddings, judged by a domain classifier.

A classifier learns to tell reference texts from current ones; its cross-validated ROC AUC says how separable the
two are: about 0.5 when they come from one distribution, towards 1 when the words (or their meaning) changed.
This is Evidently's approach to text drift. The AUC is the mean over stratified 5-fold cross-validation.

The verdict is ``auc >= threshold`` with the threshold the larger of ``DEFAULT_AUC_THRESHOLD`` (0.55) and the
95th percentile of the AUC of a classifier that learned nothing. A single AUC's noise under no drift has standard
deviation ``sqrt((n1 + n2 + 1) / (12 n1 n2))`` (Mann-Whitney); the folds share training rows, so the cross-validated
AUC is noisier: 1.46x that on 100 no-drift pairs of 100 overviews a side (``CV_NOISE``). With 100 texts a side a
fixed 0.55 is under one standard deviation above chance and raised false alarms in 25% of such pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

from trending_assets.lib.drift import INSUFFICIENT, FeatureDrift

DEFAULT_AUC_THRESHOLD = 0.55
FOLDS = 5
# One-sided 95% quantile of the standard normal: the chance-level AUC cut-off.
Z_95 = 1.645
CV_NOISE = 1.5
HASHED_FEATURES = 2**18

Embedder = Callable[[list[str]], np.ndarray]


def domain_classifier_auc(
    reference_texts: Sequence[str | None], current_texts: Sequence[str | None], seed: int = 0
) -> tuple[float | None, int]:
    """Cross-validated ROC AUC of a logistic regression on hashed bag-of-words telling reference from current.

    Returns ``(auc, n)`` with ``n`` the number of non-empty texts used; ``auc`` is None when either side has
    fewer than 5 texts (one per fold).
    """
    ref, cur = _texts(reference_texts), _texts(current_texts)
    vectorizer = HashingVectorizer(n_features=HASHED_FEATURES, alternate_sign=False, norm="l2")
    if min(len(ref), len(cur)) < FOLDS:
        return None, len(ref) + len(cur)
    return _classifier_auc(vectorizer.transform(ref + cur), len(ref), len(cur), seed), len(ref) + len(cur)


def text_drift(
    reference_texts: Sequence[str | None],
    current_texts: Sequence[str | None],
    name: str = "overview",
    threshold: float = DEFAULT_AUC_THRESHOLD,
    min_rows: int = 30,
    seed: int = 0,
) -> FeatureDrift:
    """The text drift verdict of one column of texts, by domain-classifier AUC on hashed words."""
    ref, cur = _texts(reference_texts), _texts(current_texts)
    auc = None
    if min(len(ref), len(cur)) >= min_rows:
        auc, _ = domain_classifier_auc(ref, cur, seed)
    return _verdict(name, "text", "domain_classifier_auc", auc, threshold, ref, cur, reference_texts,
                    current_texts, min_rows, {})


def embedding_drift(
    reference_texts: Sequence[str | None],
    current_texts: Sequence[str | None],
    embed: Embedder,
    name: str = "overview_embedding",
    threshold: float = DEFAULT_AUC_THRESHOLD,
    min_rows: int = 30,
    seed: int = 0,
) -> FeatureDrift:
    """Drift of the texts' embeddings (``embed`` maps texts to rows of a matrix), by domain-classifier AUC.

    The euclidean distance between the two mean embeddings is kept in ``extras`` as a second, easy-to-plot number.
    """
    ref, cur = _texts(reference_texts), _texts(current_texts)
    auc, extras = None, {}
    if min(len(ref), len(cur)) >= min_rows:
        ref_vectors, cur_vectors = np.asarray(embed(ref), float), np.asarray(embed(cur), float)
        auc = _classifier_auc(np.vstack([ref_vectors, cur_vectors]), len(ref), len(cur), seed)
        extras = {"mean_embedding_distance": float(np.linalg.norm(ref_vectors.mean(0) - cur_vectors.mean(0)))}
    return _verdict(name, "embedding", "embedding_domain_classifier_auc", auc, threshold, ref, cur,
                    reference_texts, current_texts, min_rows, extras)


def chance_auc_cutoff(n_reference: int, n_current: int) -> float:
    """The AUC a classifier that learned nothing stays below 95% of the time, for these sample sizes."""
    return 0.5 + Z_95 * CV_NOISE * math.sqrt((n_reference + n_current + 1) / (12 * n_reference * n_current))


def minilm_embedder(max_length: int = 64, batch_size: int = 64) -> Embedder:
    """An embedder from the bundled MiniLM (offline): mean-pooled, L2-normalised sentence vectors."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from trending_assets.lib.transformer_model import default_base_dir

    base = default_base_dir()
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    model = AutoModel.from_pretrained(base, local_files_only=True).eval()

    def embed(texts: list[str]) -> np.ndarray:
        chunks = []
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                                  max_length=max_length, return_tensors="pt")
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                chunks.append(torch.nn.functional.normalize(pooled, dim=1).numpy())
        return np.vstack(chunks) if chunks else np.zeros((0, model.config.hidden_size))

    return embed


def _classifier_auc(features, n_reference: int, n_current: int, seed: int) -> float:
    labels = np.r_[np.zeros(n_reference), np.ones(n_current)]
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    # liblinear: far faster than lbfgs on 2**18 sparse hashed columns.
    return float(cross_val_score(LogisticRegression(solver="liblinear"), features, labels, cv=folds,
                                 scoring="roc_auc").mean())


def _texts(texts: Sequence[str | None]) -> list[str]:
    return [t for t in texts if isinstance(t, str) and t.strip()]


def _verdict(name, kind, test, auc, threshold, ref, cur, raw_ref, raw_cur, min_rows, extras) -> FeatureDrift:
    base = dict(feature=name, kind=kind, test=test, p_value=None, psi=None, n_reference=len(ref),
                n_current=len(cur), n_missing_reference=len(raw_ref) - len(ref),
                n_missing_current=len(raw_cur) - len(cur), extras=extras)
    if auc is None:
        reason = (f"reference has {len(ref)} and current {len(cur)} non-empty texts; at least {min_rows} needed "
                  f"on each side")
        return FeatureDrift(**base, statistic=None, threshold=threshold, drifted=None, status=INSUFFICIENT,
                            reason=reason)
    cutoff = max(threshold, chance_auc_cutoff(len(ref), len(cur)))
    return FeatureDrift(**base, statistic=auc, threshold=cutoff, drifted=auc >= cutoff)

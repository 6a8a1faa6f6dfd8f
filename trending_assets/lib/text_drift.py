"""Drift of free text (movie overviews) and of its embeddings, judged by a domain classifier.

A classifier learns to tell reference texts from current ones; its cross-validated ROC AUC says how separable the
two are: about 0.5 when they come from one distribution, towards 1 when the words (or their meaning) changed.
This is Evidently's approach to text drift. The AUC is the mean over stratified 5-fold cross-validation.

The verdict is ``auc >= threshold`` with the threshold the larger of ``DEFAULT_AUC_THRESHOLD`` (0.55) and the
95th percentile of the AUC of a classifier that learned nothing. A single AUC's noise under no drift has standard
deviation ``sqrt((n1 + n2 + 1) / (12 n1 n2))`` (Mann-Whitney); the folds share training rows, so the cross-validated
AUC is noisier: 1.46x that on 100 no-drift pairs of 100 overviews a side (``CV_NOISE``). With 100 texts a side a
fixed 0.55 is under one standard deviation above chance and raised false alarms in 25% of such pairs.

``vocabulary_drift`` asks a narrower question the classifier answers poorly on small windows: did some words become
more frequent? A change confined to a small genre (a few documents a day) barely moves a classifier's AUC, but each
of its new words goes from (almost) never to several documents, which a per-word count test sees.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import polars as pl
from scipy.special import gammaln
from scipy.stats import false_discovery_control, hypergeom

from trending_assets.lib.drift import INSUFFICIENT, FeatureDrift

DEFAULT_AUC_THRESHOLD = 0.55
FOLDS = 5
# One-sided 95% quantile of the standard normal: the chance-level AUC cut-off.
Z_95 = 1.645
CV_NOISE = 1.5
HASHED_FEATURES = 2**18
# Words: runs of letters, digits and underscores, lowercased before matching.
TOKEN_PATTERN = r"\w+"
VOCABULARY_ALPHA = 0.05
# Two words, not one: a vocabulary change brings several new words, while one word can surge by itself (a name in
# the day's news) and one false discovery is then an alarm.
MIN_TOKENS = 2
REPORTED_TOKENS = 5

Embedder = Callable[[list[str]], np.ndarray]


def domain_classifier_auc(
    reference_texts: Sequence[str | None], current_texts: Sequence[str | None], seed: int = 0
) -> tuple[float | None, int]:
    """Cross-validated ROC AUC of a logistic regression on hashed bag-of-words telling reference from current.

    Returns ``(auc, n)`` with ``n`` the number of non-empty texts used; ``auc`` is None when either side has
    fewer than 5 texts (one per fold).
    """
    ref, cur = _texts(reference_texts), _texts(current_texts)
    from sklearn.feature_extraction.text import HashingVectorizer  # here: scikit-learn takes a second to import

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


def vocabulary_drift(
    reference_texts: Sequence[str | None],
    current_texts: Sequence[str | None],
    name: str = "overview_vocabulary",
    min_rows: int = 30,
    alpha: float = VOCABULARY_ALPHA,
    min_tokens: int = MIN_TOKENS,
) -> FeatureDrift:
    """Whether words became more frequent in ``current_texts``: one-sided Fisher tests per word, FDR-corrected.

    Each text is a set of lowercased words (``TOKEN_PATTERN``); a word's count is the number of texts holding it.
    Per word, the one-sided Fisher exact test asks whether its share of current texts exceeds its share of reference
    texts (the hypergeometric tail of its current count given its total count). Words that could not reach
    ``p <= alpha`` even if every text holding them were current are not tested (Tarone): they can never be
    significant, and counting them would only weaken the correction. The tested words' p-values are adjusted by
    Benjamini-Hochberg; the verdict is drift when at least ``min_tokens`` words have an adjusted p-value below
    ``alpha``.

    Benjamini-Hochberg (scipy's ``false_discovery_control``) rather than Bonferroni or Holm: when no word changed,
    the chance that it flags any word is at most ``alpha`` (for independent or positively dependent tests), as with
    Bonferroni, so it raises no more false alarms; but it gains power when many words move together, which is what a
    vocabulary change is. On the simulator's ``vocabulary_drift`` (about 5 science-fiction movies in a day's 60,
    each new word in 3 or 4 of them and in none of the 420 reference movies) Bonferroni needs a word in 5 current
    texts and detected 80% of 200 seeds within 2 days, Benjamini-Hochberg 98%, both with no false alarm on 200
    ``stable`` seeds (seeds 1000-1199 of ``bench/drift_honesty.py``).

    ``statistic`` is the number of significant words and ``p_value`` the ``min_tokens``-th smallest adjusted
    p-value, so ``p_value < threshold`` (``alpha``) is the verdict. ``reason`` names the most significant words
    with their counts; ``extras`` holds ``n_tokens`` (distinct words), ``n_tokens_tested``, ``n_significant`` and
    ``min_adjusted_p``. Fewer than ``min_rows`` non-empty texts on either side give "insufficient data".
    """
    if min_tokens < 1:
        raise ValueError(f"min_tokens must be at least 1, got {min_tokens}")
    ref, cur = _texts(reference_texts), _texts(current_texts)
    base = dict(feature=name, kind="text", test="token_frequency", threshold=alpha, psi=None, n_reference=len(ref),
                n_current=len(cur), n_missing_reference=len(reference_texts) - len(ref),
                n_missing_current=len(current_texts) - len(cur))
    if min(len(ref), len(cur)) < min_rows:
        reason = (f"reference has {len(ref)} and current {len(cur)} non-empty texts; at least {min_rows} needed "
                  f"on each side")
        return FeatureDrift(**base, statistic=None, p_value=None, drifted=None, status=INSUFFICIENT, reason=reason)

    counts = (_document_frequencies(ref).join(_document_frequencies(cur), on="token", how="full", coalesce=True,
                                              suffix="_current")
              .fill_null(0).with_columns(total=pl.col("n") + pl.col("n_current")))
    n_tokens, population = counts.height, len(ref) + len(cur)
    counts = counts.filter(pl.Series(_smallest_p(counts["total"].to_numpy(), len(cur), population) <= alpha))
    p = hypergeom.sf(counts["n_current"].to_numpy() - 1, population, counts["total"].to_numpy(), len(cur))
    counts = counts.with_columns(p=p, adjusted=false_discovery_control(p)).sort("adjusted", "p")
    adjusted = counts["adjusted"].to_numpy()
    significant = counts.filter(pl.col("adjusted") < alpha)
    # Fewer testable words than ``min_tokens``: drift is out of reach, so the verdict's p-value is 1.
    kth = float(adjusted[min_tokens - 1]) if adjusted.size >= min_tokens else 1.0
    extras = {"n_tokens": float(n_tokens), "n_tokens_tested": float(adjusted.size),
              "n_significant": float(significant.height),
              "min_adjusted_p": float(adjusted[0]) if adjusted.size else 1.0}
    if significant.height:
        shown = ", ".join(f"{row['token']!r} {row['n_current']}/{len(cur)} vs {row['n']}/{len(ref)}"
                          for row in significant.head(REPORTED_TOKENS).iter_rows(named=True))
        more = f" and {significant.height - REPORTED_TOKENS} more" if significant.height > REPORTED_TOKENS else ""
        reason = (f"{significant.height} of {adjusted.size} tested words more frequent in current texts (adjusted "
                  f"p < {alpha}; {min_tokens} needed for drift): {shown}{more}")
    else:
        reason = (f"none of {adjusted.size} tested words more frequent in current texts (adjusted p < {alpha}; "
                  f"smallest {extras['min_adjusted_p']:.3g})")
    return FeatureDrift(**base, statistic=float(significant.height), p_value=kth, drifted=kth < alpha,
                        reason=reason, extras=extras)


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
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    # liblinear: far faster than lbfgs on 2**18 sparse hashed columns.
    return float(cross_val_score(LogisticRegression(solver="liblinear"), features, labels, cv=folds,
                                 scoring="roc_auc").mean())


def _document_frequencies(texts: list[str]) -> pl.DataFrame:
    """Columns ``token`` and ``n``: how many of ``texts`` hold each word (polars, so 100k texts take a second)."""
    words = pl.Series("token", texts, dtype=pl.String).str.to_lowercase().str.extract_all(TOKEN_PATTERN)
    return words.list.unique().explode().drop_nulls().value_counts(name="n").with_columns(pl.col("n").cast(pl.Int64))


def _smallest_p(total: np.ndarray, n_current: int, population: int) -> np.ndarray:
    """The smallest one-sided Fisher p-value each word's total count allows: as many of its texts as fit current.

    That p-value is the hypergeometric probability of the extreme table, computed from log-gamma functions: scipy's
    ``hypergeom.pmf`` is far slower on the tens of thousands of words of 100k texts.
    """
    extreme = np.minimum(total, n_current)
    return np.exp(_log_choose(total, extreme) + _log_choose(population - total, n_current - extreme)
                  - _log_choose(population, n_current))


def _log_choose(n, k):
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


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

"""Data drift between a reference (the champion's training window) and the current movies, feature by feature.

The tests follow Evidently's defaults, chosen by the size of the reference:

- numeric: two-sample Kolmogorov-Smirnov (drift when p < 0.05) for a reference of at most 1000 values, else the
  Wasserstein distance divided by the reference's standard deviation (drift when >= 0.1). With many rows a
  p-value flags differences too small to matter, so large samples are judged by an effect size instead.
- categorical: chi-squared test of homogeneity on the 2 x k table of category counts (p < 0.05) for a reference of
  at most 1000 values, else the Jensen-Shannon distance (base 2, drift when >= 0.1).

PSI (population stability index) is reported for every feature as a familiar second number, never as the verdict.
Nulls, NaN and infinities are dropped per feature and counted. A feature with fewer than ``min_rows`` values on
either side gets status ``"insufficient data"`` and ``drifted=None``: it is neither an alarm nor an all-clear.
``text_drift`` holds the drift tests for free text and embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

LARGE_REFERENCE = 1000
P_VALUE = 0.05
WASSERSTEIN_THRESHOLD = 0.1
JENSEN_SHANNON_THRESHOLD = 0.1
PSI_BINS = 10
# Stands in for an empty bin's share so PSI stays finite; Evidently uses the same value.
PSI_EPSILON = 1e-4
OK = "ok"
INSUFFICIENT = "insufficient data"
LONG_SCHEMA = {
    "report_id": pl.String, "feature": pl.String, "kind": pl.String, "test": pl.String, "metric": pl.String,
    "value": pl.Float64, "threshold": pl.Float64, "drifted": pl.Boolean, "status": pl.String, "reason": pl.String,
    "n_reference": pl.Int64, "n_current": pl.Int64, "n_missing_reference": pl.Int64, "n_missing_current": pl.Int64,
}


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift verdict.

    ``kind`` is ``numeric``, ``categorical``, ``text`` or ``embedding``. ``statistic`` is the test's own number
    (KS D, normalized Wasserstein, chi-squared, Jensen-Shannon distance, ROC AUC); ``threshold`` is the p-value
    cut-off for the hypothesis tests (``p_value < threshold`` is drift) and the statistic's cut-off otherwise
    (``statistic >= threshold``). ``drifted`` is None when ``status`` is ``"insufficient data"``, and ``reason``
    then says why. ``extras`` holds further numbers worth keeping (unseen categories, mean-embedding distance).
    """

    feature: str
    kind: str
    test: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool | None
    psi: float | None
    n_reference: int
    n_current: int
    n_missing_reference: int = 0
    n_missing_current: int = 0
    status: str = OK
    reason: str = ""
    extras: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetDrift:
    """Every feature's verdict and the dataset's: drift when at least ``threshold_share`` of judged features drift.

    ``share_drifted`` counts only features with a verdict; it is None (and ``dataset_drift`` False, ``status``
    ``"insufficient data"``) when no feature could be judged.
    """

    features: tuple[FeatureDrift, ...]
    share_drifted: float | None
    dataset_drift: bool
    threshold_share: float
    n_judged: int
    n_drifted: int
    status: str = OK


def feature_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    min_rows: int = 30,
    share: float = 0.5,
) -> DatasetDrift:
    """Test each named feature of ``current`` against ``reference`` and decide whether the dataset drifted.

    A column absent from a frame counts as all missing, so an empty ``current`` (even one without columns) gives
    "insufficient data" rather than an error.
    """
    results = [numeric_drift(_column(reference, name), _column(current, name), name, min_rows) for name in numeric]
    results += [categorical_drift(_column(reference, name), _column(current, name), name, min_rows)
                for name in categorical]
    return dataset_drift(results, share)


def dataset_drift(features: Sequence[FeatureDrift], share: float = 0.5) -> DatasetDrift:
    """Combine feature verdicts (tabular, text, embedding alike) into the dataset's verdict."""
    if not 0 < share <= 1:
        raise ValueError(f"the drifted-feature share must be in (0, 1], got {share}")
    judged = [f for f in features if f.drifted is not None]
    drifted = sum(f.drifted for f in judged)
    if not judged:
        return DatasetDrift(tuple(features), None, False, share, 0, 0, INSUFFICIENT)
    fraction = drifted / len(judged)
    return DatasetDrift(tuple(features), fraction, fraction >= share, share, len(judged), drifted)


def numeric_drift(reference: pl.Series, current: pl.Series, name: str, min_rows: int = 30) -> FeatureDrift:
    """KS (reference <= 1000 values) or normalized Wasserstein drift of one numeric feature, plus PSI."""
    ref, ref_missing = _finite(reference)
    cur, cur_missing = _finite(current)
    large = ref.size > LARGE_REFERENCE
    test, threshold = ("wasserstein_normed", WASSERSTEIN_THRESHOLD) if large else ("ks", P_VALUE)
    base = dict(feature=name, kind="numeric", test=test, threshold=threshold, n_reference=int(ref.size),
                n_current=int(cur.size), n_missing_reference=ref_missing, n_missing_current=cur_missing)
    short = _too_few(ref.size, cur.size, min_rows)
    if short:
        return FeatureDrift(**base, statistic=None, p_value=None, drifted=None, psi=None,
                            status=INSUFFICIENT, reason=short)
    psi = _numeric_psi(ref, cur)
    if not large:
        result = ks_2samp(ref, cur)
        p = float(result.pvalue)
        return FeatureDrift(**base, statistic=float(result.statistic), p_value=p, drifted=p < P_VALUE, psi=psi)
    distance = wasserstein_distance(ref, cur)
    # A constant reference has no spread to measure by; the pooled spread keeps the ratio finite, and a constant
    # that stays the same constant gives distance 0, so no drift.
    scale = ref.std() or np.concatenate([ref, cur]).std()
    normed = float(distance / scale) if scale > 0 else 0.0
    return FeatureDrift(**base, statistic=normed, p_value=None, drifted=normed >= WASSERSTEIN_THRESHOLD, psi=psi)


def categorical_drift(reference: pl.Series, current: pl.Series, name: str, min_rows: int = 30) -> FeatureDrift:
    """Chi-squared (reference <= 1000 values) or Jensen-Shannon drift of one categorical feature, plus PSI."""
    ref = reference.cast(pl.String, strict=False)
    cur = current.cast(pl.String, strict=False)
    drift = distribution_drift(_counts(ref.drop_nulls()), _counts(cur.drop_nulls()), name, min_rows)
    return replace(drift, n_missing_reference=ref.null_count(), n_missing_current=cur.null_count())


def distribution_drift(
    reference_counts: Mapping[str, int],
    current_counts: Mapping[str, int],
    name: str = "distribution",
    min_rows: int = 30,
) -> FeatureDrift:
    """Drift between two category count tables: chi-squared up to 1000 reference counts, Jensen-Shannon above.

    Used for prediction drift (the champion's predicted genres) and label drift (the genre mix of new labels).
    A movie with several genres counts once per genre, so the counts are not independent draws; the chi-squared
    p-value is then a little optimistic, which is one more reason PSI and JS are reported beside it.
    """
    categories = sorted(set(reference_counts) | set(current_counts))
    ref = np.array([reference_counts.get(c, 0) for c in categories], dtype=float)
    cur = np.array([current_counts.get(c, 0) for c in categories], dtype=float)
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    large = n_ref > LARGE_REFERENCE
    test, threshold = ("jensen_shannon", JENSEN_SHANNON_THRESHOLD) if large else ("chi_squared", P_VALUE)
    unseen = sum(1 for c in categories if reference_counts.get(c, 0) == 0 and current_counts.get(c, 0) > 0)
    base = dict(feature=name, kind="categorical", test=test, threshold=threshold, n_reference=n_ref,
                n_current=n_cur, extras={"unseen_categories": float(unseen)})
    short = _too_few(n_ref, n_cur, min_rows)
    if short:
        return FeatureDrift(**base, statistic=None, p_value=None, drifted=None, psi=None,
                            status=INSUFFICIENT, reason=short)
    psi = _psi(ref / n_ref, cur / n_cur)
    if large:
        distance = float(jensenshannon(ref / n_ref, cur / n_cur, base=2))
        return FeatureDrift(**base, statistic=distance, p_value=None,
                            drifted=distance >= JENSEN_SHANNON_THRESHOLD, psi=psi)
    # One category on both sides leaves nothing to compare: the same constant, so no drift (scipy agrees: p=1).
    result = chi2_contingency(np.vstack([ref, cur]))
    p = float(result.pvalue)
    return FeatureDrift(**base, statistic=float(result.statistic), p_value=p, drifted=p < P_VALUE, psi=psi)


def genre_counts(genres: pl.Series) -> dict[str, int]:
    """How often each genre appears in a column of genre lists (a movie counts once per genre it has)."""
    return _counts(genres.explode().drop_nulls().cast(pl.String))


def to_long(result: DatasetDrift | Sequence[FeatureDrift], report_id: str) -> pl.DataFrame:
    """Rows for ``monitoring.drift_reports``: one per feature and metric, plus the dataset's own rows.

    Columns: ``report_id``, ``feature`` (``"dataset"`` for the dataset rows), ``kind``, ``test``, ``metric``
    (``statistic``, ``p_value``, ``psi``, the extras' names; ``share_drifted``, ``n_judged``, ``n_drifted`` for the
    dataset), ``value`` (null when not computed), ``threshold``, ``drifted`` (null when not judged), ``status``,
    ``reason``, ``n_reference``, ``n_current``, ``n_missing_reference``, ``n_missing_current`` (null on dataset
    rows).
    """
    features = result.features if isinstance(result, DatasetDrift) else tuple(result)
    rows = []
    for f in features:
        shared = dict(report_id=report_id, feature=f.feature, kind=f.kind, test=f.test, threshold=f.threshold,
                      drifted=f.drifted, status=f.status, reason=f.reason, n_reference=f.n_reference,
                      n_current=f.n_current, n_missing_reference=f.n_missing_reference,
                      n_missing_current=f.n_missing_current)
        metrics = {"statistic": f.statistic, "p_value": f.p_value, "psi": f.psi, **f.extras}
        rows += [{**shared, "metric": metric, "value": value} for metric, value in metrics.items()]
    if isinstance(result, DatasetDrift):
        shared = dict(report_id=report_id, feature="dataset", kind="dataset", test="share_drifted",
                      threshold=result.threshold_share, drifted=result.dataset_drift if result.n_judged else None,
                      status=result.status, reason="" if result.n_judged else "no feature could be judged")
        metrics = {"share_drifted": result.share_drifted, "n_judged": result.n_judged, "n_drifted": result.n_drifted}
        rows += [{**shared, "metric": metric, "value": value} for metric, value in metrics.items()]
    return pl.DataFrame(rows, schema=LONG_SCHEMA)


def _column(frame: pl.DataFrame, name: str) -> pl.Series:
    return frame[name] if name in frame.columns else pl.Series(name, [None] * frame.height)


def _finite(series: pl.Series) -> tuple[np.ndarray, int]:
    """The finite values of a column as floats, and how many were missing (null, NaN, infinite, not a number)."""
    values = series.cast(pl.Float64, strict=False).to_numpy().astype(float)
    kept = values[np.isfinite(values)]
    return kept, int(values.size - kept.size)


def _counts(series: pl.Series) -> dict[str, int]:
    if series.is_empty():
        return {}
    counted = series.value_counts()
    return dict(zip(counted[series.name].to_list(), counted["count"].to_list(), strict=True))


def _too_few(n_reference: int, n_current: int, min_rows: int) -> str:
    lacking = [f"{side} has {n} values" for side, n in (("reference", n_reference), ("current", n_current))
               if n < min_rows]
    return f"{' and '.join(lacking)} after dropping missing ones; at least {min_rows} needed" if lacking else ""


def _numeric_psi(ref: np.ndarray, cur: np.ndarray) -> float:
    """PSI over the reference's deciles, with a bin each for values below and above the reference's range.

    Repeated quantiles merge (a constant reference has one inner bin), and the outer bins, empty in the reference,
    catch a current sample that moved outside it.
    """
    inner = np.unique(np.quantile(ref, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    lo, hi = ref.min(), ref.max()

    def shares(values: np.ndarray) -> np.ndarray:
        bins = np.searchsorted(inner, values, side="right") + 1
        bins[values < lo] = 0
        bins[values > hi] = inner.size + 2
        return np.bincount(bins, minlength=inner.size + 3) / values.size

    return _psi(shares(ref), shares(cur))


def _psi(ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    ref_share = np.clip(ref_share, PSI_EPSILON, None)
    cur_share = np.clip(cur_share, PSI_EPSILON, None)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))

"""Which movie columns the drift report tests, and the one call that tests them all.

The tabular columns go through ``drift.feature_drift``; the text a reader sees (title and overview, joined) goes
through ``text_drift``'s domain classifier. The dataset drifts when at least ``share`` of the judged features do.
"""

from __future__ import annotations

import polars as pl

from trending_assets.lib.drift import DatasetDrift, dataset_drift, feature_drift
from trending_assets.lib.text_drift import text_drift

MOVIE_NUMERIC = ("release_year", "popularity", "vote_average", "vote_count", "runtime_minutes")
MOVIE_CATEGORICAL = ("source", "language")
TEXT_FEATURE = "overview"


def movie_drift(
    reference: pl.DataFrame, current: pl.DataFrame, share: float = 0.5, min_rows: int = 30, text: bool = True
) -> DatasetDrift:
    """Drift of ``current`` movies against ``reference``: the tabular columns, plus title and overview if ``text``."""
    tabular = feature_drift(reference, current, MOVIE_NUMERIC, MOVIE_CATEGORICAL, min_rows, share)
    features = list(tabular.features)
    if text:
        features.append(text_drift(_texts(reference), _texts(current), TEXT_FEATURE, min_rows=min_rows))
    return dataset_drift(features, share)


def _texts(frame: pl.DataFrame) -> list[str | None]:
    """Title and overview joined by a space; a missing part is skipped, both missing gives None."""
    parts = [pl.col(name) for name in ("title", "overview") if name in frame.columns]
    if not parts:
        return [None] * frame.height
    joined = frame.select(pl.concat_str(parts, separator=" ", ignore_nulls=True).alias("text"))["text"]
    return [t or None for t in joined.to_list()]

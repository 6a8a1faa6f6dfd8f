"""Which movie columns the drift report tests, and the calls that test them.

The tabular columns go through ``drift.feature_drift``; the text a reader sees (title and overview, joined) goes
through ``text_drift``'s domain classifier. The dataset drifts when at least ``share`` of the judged features do.

``movie_vocabulary_drift`` judges the same title+overview texts for words that became more frequent. It is a
verdict of its own, deliberately not one of ``movie_drift``'s features: counted in the share it would be 1 of 9
and could not make a share-0.5 verdict fire by itself, while a change confined to a few words (a genre's
vocabulary) is worth an alarm by itself. The drift alarm is therefore "dataset drift OR vocabulary drift OR label
drift", each reported separately so it is clear which one fired.
"""

from __future__ import annotations

import polars as pl

from trending_assets.lib.drift import DatasetDrift, FeatureDrift, dataset_drift, feature_drift
from trending_assets.lib.text_drift import text_drift, vocabulary_drift

MOVIE_NUMERIC = ("release_year", "popularity", "vote_average", "vote_count", "runtime_minutes")
MOVIE_CATEGORICAL = ("source", "language")
TEXT_FEATURE = "overview"
VOCABULARY_FEATURE = "overview_vocabulary"


def movie_drift(
    reference: pl.DataFrame, current: pl.DataFrame, share: float = 0.5, min_rows: int = 30, text: bool = True
) -> DatasetDrift:
    """Drift of ``current`` movies against ``reference``: the tabular columns, plus title and overview if ``text``."""
    tabular = feature_drift(reference, current, MOVIE_NUMERIC, MOVIE_CATEGORICAL, min_rows, share)
    features = list(tabular.features)
    if text:
        features.append(text_drift(texts(reference), texts(current), TEXT_FEATURE, min_rows=min_rows))
    return dataset_drift(features, share)


def movie_vocabulary_drift(reference: pl.DataFrame, current: pl.DataFrame, min_rows: int = 30) -> FeatureDrift:
    """Whether words of the title and overview became more frequent in ``current`` (``text_drift.vocabulary_drift``).

    Kept out of ``movie_drift``'s share on purpose (see the module docstring). A frame without title and overview
    counts as all missing, so the verdict is then "insufficient data".
    """
    return vocabulary_drift(texts(reference), texts(current), VOCABULARY_FEATURE, min_rows=min_rows)


def texts(frame: pl.DataFrame) -> list[str | None]:
    """Title and overview joined by a space; a missing part is skipped, both missing gives None."""
    parts = [pl.col(name) for name in ("title", "overview") if name in frame.columns]
    if not parts:
        return [None] * frame.height
    joined = frame.select(pl.concat_str(parts, separator=" ", ignore_nulls=True).alias("text"))["text"]
    return [t or None for t in joined.to_list()]

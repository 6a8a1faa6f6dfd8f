"""The drift report: the champion's training window (reference) against the newest movies (current).

Both sides are movies *as first scraped* (``raw.movies``, each movie's first version): a movie's popularity decays
and its vote count grows with every re-scrape, so comparing the window's latest versions with brand-new movies
would report age as drift. The reference is every movie first seen in the champion's training period, labeled or
not (the window itself holds labeled movies only, and unlabeled ones differ: comparing them with an unfiltered
current day would report the filter as drift). Five signals, each judged on its own:

- ``data``: every tabular column plus the title+overview text (``drift_features.movie_drift``); the dataset drifts
  when at least ``share`` of the judged features do (Evidently's rule).
- ``vocabulary``: words of the title+overview that became more frequent in the current texts
  (``drift_features.movie_vocabulary_drift``), which sees a genre's new words long before they move a share of
  whole features.
- ``embedding``: a domain classifier on the bundled MiniLM's sentence embeddings (optional: needs the model).
- ``prediction``: the champion's predicted genre mix, reference against current.
- ``label``: the genre mix of the labels (scraped genres) themselves.

``drift_detected`` is any of data, vocabulary or label: what the asset checks turn into retraining. Embedding and
prediction drift are reported and warned about; they move with the others and would double-count them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl

from trending_assets.lib import drift
from trending_assets.lib.drift import DatasetDrift, FeatureDrift
from trending_assets.lib.drift_features import movie_drift, movie_vocabulary_drift, texts
from trending_assets.lib.text_drift import Embedder, embedding_drift

FIRST_SCRAPES_SQL = """
    SELECT movie_id, title, overview, genres, release_year, source, language, popularity, vote_average,
           vote_count, runtime_minutes, scraped_at::DATE AS first_seen_date
    FROM raw.movies
    QUALIFY row_number() OVER (PARTITION BY movie_id ORDER BY scraped_at, source_file, line_number) = 1
"""
SIGNALS: tuple[str, ...] = ("data", "vocabulary", "embedding", "prediction", "label")
ALARMING: tuple[str, ...] = ("data", "vocabulary", "label")
Predict = Callable[[pl.DataFrame], list[list[str]]]


@dataclass(frozen=True)
class DriftReport:
    """One report's verdicts. ``signals`` maps each of ``SIGNALS`` that ran to its verdict (a ``DatasetDrift``
    for ``data``, a ``FeatureDrift`` for the others); a signal that could not run (no champion to predict, no
    embedder) is absent and named in ``notes``."""

    reference_rows: int
    current_rows: int
    current_start: date | None
    current_end: date | None
    signals: dict[str, DatasetDrift | FeatureDrift]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def drifted(self, signal: str) -> bool | None:
        """True/False for a judged signal; None when it was not run or had too little data."""
        verdict = self.signals.get(signal)
        if verdict is None:
            return None
        if isinstance(verdict, DatasetDrift):
            return verdict.dataset_drift if verdict.n_judged else None
        return verdict.drifted

    @property
    def drift_detected(self) -> bool:
        return any(self.drifted(signal) for signal in ALARMING)

    def long_rows(self, report_id: str) -> pl.DataFrame:
        """Every signal's ``drift.to_long`` rows with a ``signal`` column, for ``monitoring.drift_reports``."""
        frames = [drift.to_long(verdict if isinstance(verdict, DatasetDrift) else [verdict], report_id)
                  .with_columns(pl.lit(signal).alias("signal")) for signal, verdict in self.signals.items()]
        return pl.concat(frames) if frames else pl.DataFrame(schema={**drift.LONG_SCHEMA, "signal": pl.String})

    def summary(self) -> pl.DataFrame:
        """One row per signal: its test, headline number, threshold, verdict and why."""
        rows = []
        for signal, verdict in self.signals.items():
            if isinstance(verdict, DatasetDrift):
                rows.append({"signal": signal, "test": f"share of {verdict.n_judged} features drifted",
                             "value": verdict.share_drifted, "threshold": verdict.threshold_share,
                             "drifted": self.drifted(signal),
                             "detail": ", ".join(f.feature for f in verdict.features if f.drifted) or verdict.status})
            else:
                value = verdict.statistic if verdict.p_value is None else verdict.p_value
                rows.append({"signal": signal, "test": verdict.test, "value": value, "threshold": verdict.threshold,
                             "drifted": verdict.drifted, "detail": verdict.reason or verdict.status})
        return pl.DataFrame(rows, schema={"signal": pl.String, "test": pl.String, "value": pl.Float64,
                                          "threshold": pl.Float64, "drifted": pl.Boolean, "detail": pl.String})

    def features(self) -> pl.DataFrame:
        """Every feature of every signal: kind, test, statistic, p-value, PSI, threshold, verdict."""
        rows = [{"signal": signal, "feature": f.feature, "kind": f.kind, "test": f.test, "statistic": f.statistic,
                 "p_value": f.p_value, "threshold": f.threshold, "psi": f.psi, "drifted": f.drifted,
                 "status": f.status}
                for signal, verdict in self.signals.items()
                for f in (verdict.features if isinstance(verdict, DatasetDrift) else (verdict,))]
        return pl.DataFrame(rows, schema={"signal": pl.String, "feature": pl.String, "kind": pl.String,
                                          "test": pl.String, "statistic": pl.Float64, "p_value": pl.Float64,
                                          "threshold": pl.Float64, "psi": pl.Float64, "drifted": pl.Boolean,
                                          "status": pl.String})


def first_scrapes(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every movie's first scraped version, with the day it was first seen."""
    return con.sql(FIRST_SCRAPES_SQL).pl()


def split(movies: pl.DataFrame, reference_start: date | None, reference_end: date,
          current_days: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(reference, current): every movie first seen in the champion's training period [``reference_start``,
    ``reference_end``] (no start: everything up to the end), labeled or not, since the model meets unlabeled movies
    too; and those first seen in the newest ``current_days`` days after that period."""
    if current_days < 1:
        raise ValueError(f"current_days must be at least 1; got {current_days!r}")
    seen = pl.col("first_seen_date")
    in_period = seen <= reference_end if reference_start is None else seen.is_between(reference_start, reference_end)
    reference = movies.filter(in_period)
    latest = movies["first_seen_date"].max() if movies.height else None
    if latest is None or latest <= reference_end:
        return reference, movies.clear()
    start = max(latest - timedelta(days=current_days - 1), reference_end + timedelta(days=1))
    return reference, movies.filter(seen >= start)


def build(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    *,
    share: float = 0.5,
    min_rows: int = 30,
    predict: Predict | None = None,
    embed: Embedder | None = None,
    max_reference_rows: int | None = 1000,
    seed: int = 0,
) -> DriftReport:
    """Run every signal on ``reference`` against ``current`` (frames shaped like ``first_scrapes``).

    ``predict`` maps movies to the champion's genre lists (prediction drift); ``embed`` maps texts to vectors
    (embedding drift). A reference longer than ``max_reference_rows`` is sampled down (seeded) for every signal.
    The default of 1000 keeps the tabular tests on KS and chi-squared: with a few hundred current movies, the
    distances Evidently uses above 1000 reference rows (normalized Wasserstein, Jensen-Shannon, threshold 0.1)
    are as noisy as their threshold (0.05-0.17 between two stable days and a stable month, in the simulator),
    while a test's p-value accounts for both sample sizes. ``None`` judges a large reference by distance.
    """
    notes = []
    sampled = reference
    if max_reference_rows is not None and reference.height > max_reference_rows:
        sampled = reference.sample(max_reference_rows, seed=seed)
        notes.append(f"every signal uses {max_reference_rows} of {reference.height} reference movies (seeded sample)")
    signals: dict[str, DatasetDrift | FeatureDrift] = {
        "data": movie_drift(sampled, current, share=share, min_rows=min_rows),
        "vocabulary": movie_vocabulary_drift(sampled, current, min_rows=min_rows),
    }
    if embed is not None:
        signals["embedding"] = embedding_drift(texts(sampled), texts(current), embed, "title+overview embedding",
                                               min_rows=min_rows, seed=seed)
    else:
        notes.append("embedding drift not computed (no embedder)")
    if predict is not None:
        signals["prediction"] = drift.distribution_drift(
            _genre_counts(predict(sampled)), _genre_counts(predict(current)), "predicted genres", min_rows)
    else:
        notes.append("prediction drift not computed (no champion)")
    signals["label"] = drift.distribution_drift(
        drift.genre_counts(sampled["genres"]), drift.genre_counts(current["genres"]), "label genres", min_rows)
    # the data signal is a DatasetDrift; order the dict as SIGNALS for stable reports
    ordered = {name: signals[name] for name in SIGNALS if name in signals}
    days = current["first_seen_date"] if current.height else None
    return DriftReport(sampled.height, current.height, days.min() if days is not None else None,
                       days.max() if days is not None else None, ordered, tuple(notes))


def _genre_counts(predicted: list[list[str]]) -> dict[str, int]:
    values, counts = np.unique(np.array([g for genres in predicted for g in genres], dtype=object).astype(str),
                               return_counts=True) if any(predicted) else ([], [])
    return {str(v): int(c) for v, c in zip(values, counts)}

"""One root for all state: ``TRENDING_HOME`` (default ``data/`` in the repository).

Everything the platform writes lives under it: the DuckDB warehouse, the Dagster instance, the landing zone,
model artifacts, training windows and W&B offline runs. Nothing else in the code builds these paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ENTITIES = ("movies", "reviews", "feedback")


@dataclass(frozen=True)
class TrendingHome:
    root: Path

    @classmethod
    def from_env(cls) -> "TrendingHome":
        """The home named by ``TRENDING_HOME``, else ``<repo>/data``; always absolute."""
        raw = os.environ.get("TRENDING_HOME") or str(REPO_ROOT / "data")
        return cls(Path(raw).expanduser().resolve())

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def warehouse_snapshot(self) -> Path:
        """Read-only copy for analysts, republished after each build (see lib/warehouse.py)."""
        return self.root / "warehouse_snapshot.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    def landing_dir(self, entity: str) -> Path:
        if entity not in ENTITIES:
            raise ValueError(f"unknown landing entity {entity!r}; expected one of {', '.join(ENTITIES)}")
        return self.landing / entity

    @property
    def ground_truth(self) -> Path:
        """Simulator truth (true genres, tastes, drift dates): for tests and experiments, never for models."""
        return self.root / "ground_truth"

    @property
    def windows(self) -> Path:
        return self.root / "windows"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def wandb(self) -> Path:
        return self.root / "wandb"

    @property
    def reports(self) -> Path:
        """Evaluation reports and plots, one folder per model version or experiment."""
        return self.root / "reports"

    @property
    def serving(self) -> Path:
        """What the serving API reads: the deployment plan, the catalog it ranks, and admin requests it leaves."""
        return self.root / "serving"

    @property
    def deployment_plan(self) -> Path:
        return self.serving / "plan.json"

    @property
    def serving_catalog(self) -> Path:
        return self.serving / "catalog.parquet"

    @property
    def user_profiles(self) -> Path:
        """Each user's genre profile from their clicks, for personalised rankers."""
        return self.serving / "user_profiles.parquet"

    @property
    def genre_thresholds(self) -> Path:
        """The genre-threshold policy layer the API applies for champion-served users (serving/genre_thresholds)."""
        return self.serving / "genre_thresholds.json"

    @property
    def serving_requests(self) -> Path:
        """Rollback requests from the API's admin endpoint; a sensor turns each into a registry move."""
        return self.serving / "requests"

    def ensure(self) -> "TrendingHome":
        """Create the folders (idempotent) and return self."""
        for path in (self.root, self.dagster_home, self.ground_truth, self.windows, self.models, self.wandb,
                     self.reports, self.serving, self.serving_requests):
            path.mkdir(parents=True, exist_ok=True)
        for entity in ENTITIES:
            self.landing_dir(entity).mkdir(parents=True, exist_ok=True)
        return self

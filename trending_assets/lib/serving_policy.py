"""The genre-threshold layer at serving time: which genres a champion-served user sees on ``/trending``.

The ``serving/genre_thresholds`` asset publishes, per genre, a distribution over candidate thresholds
(``policy_layer_store.published``). For a user served by the layer's model outside every model experiment, each
genre's threshold is drawn by ``bandit_allocation.sticky_arm`` (the same for the user all day, drawn with exactly
its probability over users) and a genre is shown when the model's probability reaches it. The router logs the
draws and their propensities in an exposure of the layer (``choice.payload``), which is what the layer learns from
and what off-policy evaluation weighs.

The file is re-read when it changes. A layer for another model version, or whose genres are not the model's, is not
applied: the model's own threshold serves, and ``error`` says why.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trending_assets.lib import watched_file
from trending_assets.lib.bandit_allocation import sticky_arm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Choice:
    """One user's thresholds for the day, in the model's genre order, with their propensities."""

    layer_id: str
    genres: tuple[str, ...]
    thresholds: np.ndarray
    propensities: np.ndarray

    def labels(self, probs: np.ndarray) -> np.ndarray:
        """0/1 genres for rows of probabilities (columns in ``genres`` order) under these thresholds."""
        return (probs >= self.thresholds).astype(np.int8)

    def payload(self) -> dict:
        return {"surface": "genre_thresholds", "genres": list(self.genres),
                "thresholds": self.thresholds.tolist(), "propensities": self.propensities.tolist()}


class ThresholdLayer:
    """The published layer: per genre, the thresholds and the probability of drawing each."""

    def __init__(self, published: dict):
        try:
            self.layer_id, self.model_version = str(published["layer_id"]), str(published["model_version"])
            self.salt, self.active = str(published["salt"]), bool(published["active"])
            self.epoch, self.published_at = published.get("epoch"), published.get("published_at")
            self.thresholds = [float(t) for t in published["thresholds"]]
            self.distributions = {g: dict(zip(map(repr, self.thresholds), map(float, p)))
                                  for g, p in published["genres"].items()}
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a policy layer file (needs layer_id, model_version, salt, active, thresholds, "
                             f"genres): {error!r}") from None

    def choose(self, user_id: str, period_key: str, genres: tuple[str, ...]) -> Choice:
        """The user's threshold per genre for the period; ``genres`` is the model's order."""
        thresholds, propensities = [], []
        for genre in genres:
            distribution = self.distributions[genre]
            arm = sticky_arm(f"{self.salt}:{genre}", user_id, distribution, period_key)
            thresholds.append(float(arm))
            propensities.append(distribution[arm])
        return Choice(self.layer_id, genres, np.array(thresholds), np.array(propensities))

    def serves(self, model_version: str, genres: tuple[str, ...]) -> str | None:
        """None when the layer applies to this model; otherwise why not."""
        if not self.active:
            return "the layer is stopped"
        if model_version != self.model_version:
            return f"the layer is for {self.model_version}, not {model_version}"
        if set(genres) != set(self.distributions):
            return (f"the layer's genres {sorted(self.distributions)} are not the model's {sorted(genres)}; "
                    "materialize serving/genre_thresholds")
        return None


class PublishedLayer:
    """The layer file, re-read when it changes; a bad file keeps the last good layer and sets ``error``."""

    def __init__(self, path: Path):
        self.path, self.stamp = path, None
        self.current: ThresholdLayer | None = None
        self.error: str | None = None
        self.why_not: str | None = None

    def refresh(self) -> bool:
        stamp = watched_file.new_stamp(self.path, self.stamp)
        if stamp is None:
            return False
        self.stamp = stamp
        try:
            self.current, self.error = ThresholdLayer(json.loads(self.path.read_text())), None
        except (OSError, ValueError) as error:
            self.error = f"policy layer file {self.path} not used: {error}"
            log.error(self.error)
        return True

    def choice_for(self, model_version: str, genres: tuple[str, ...], user_id: str, period_key: str) -> Choice | None:
        """The user's thresholds when the layer applies to ``model_version``, else None."""
        layer = self.current
        if layer is None:
            return None
        self.why_not = layer.serves(model_version, genres)
        return None if self.why_not is not None else layer.choose(user_id, period_key, genres)

    def health(self) -> dict | None:
        """For ``/health``: the layer served, and why it did not apply to the last champion request, if it did not."""
        if self.current is None and self.error is None:
            return None
        layer = self.current
        return {"layer_id": layer.layer_id if layer else None, "model_version": layer.model_version if layer else None,
                "active": layer.active if layer else None, "published_at": layer.published_at if layer else None,
                "not_applied": self.why_not, "error": self.error}

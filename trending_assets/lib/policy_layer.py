"""The policy layer: per-genre thresholds for showing genre tags, adapted online by bandits without retraining.

The champion gives each served movie a probability per genre; a genre is shown when its probability reaches the
genre's threshold. Instead of one fixed 0.5, each genre has a Thompson-sampling bandit over candidate thresholds
(with an exploration floor and a warm-up). A user keeps one threshold per genre for a period (sticky assignment,
salted per genre), and every decision logs that threshold's propensity, so the logs can be evaluated off-policy.

The reward of a genre's decision arrives when the movie's true genres are known (labels, user corrections): 1 when
showing or hiding the genre matched the truth, else 0. A Beta posterior is a plain sum of evidence, so learning
does not depend on the order of the labelled decisions: the same logs always rebuild the same state. The layer
does not forget by itself; to follow drift, rebuild it from the prior over a trailing window of labelled logs.

Unknown genres are refused, not ignored: a genre the layer does not know would silently keep the old rule, which
hides a stale layer. Build the layer over the model's genres, or rebuild it when the taxonomy changes.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from trending_assets.lib import off_policy
from trending_assets.lib.bandit_allocation import sticky_arm
from trending_assets.lib.bandits import ThompsonSampling
from trending_assets.lib.genre_model import DEFAULT_THRESHOLD

DEFAULT_THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
SURE_Z = 1.645  # a learned threshold replaces the baseline once ahead with 95% posterior probability (normal approx.)
ESTIMATORS = {"ips": off_policy.ips, "snips": off_policy.snips, "doubly_robust": off_policy.doubly_robust}


@dataclass(frozen=True)
class GenreChoice:
    """One genre's part of a decision: the model's probability, the threshold drawn, its propensity, and the outcome."""

    probability: float
    threshold: float
    propensity: float
    shown: bool


@dataclass(frozen=True)
class ThresholdDecision:
    """The thresholds one user got for one served movie in one period, per genre; logged with the impression."""

    user_id: str
    period_key: str
    choices: dict[str, GenreChoice]

    @property
    def shown(self) -> tuple[str, ...]:
        """The genres shown, in the order they were decided."""
        return tuple(genre for genre, choice in self.choices.items() if choice.shown)

    def to_payload(self) -> dict:
        """The decision as JSON-ready values, for the exposure log."""
        return {"user_id": self.user_id, "period_key": self.period_key,
                "genres": {genre: asdict(choice) for genre, choice in self.choices.items()}}

    @classmethod
    def from_payload(cls, payload: Mapping) -> ThresholdDecision:
        """Read back ``to_payload()``, checking that each genre's record is complete and consistent."""
        try:
            genres = {str(genre): GenreChoice(float(c["probability"]), float(c["threshold"]),
                                              float(c["propensity"]), bool(c["shown"]))
                      for genre, c in payload["genres"].items()}
            decision = cls(str(payload["user_id"]), str(payload["period_key"]), genres)
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a threshold decision payload (needs user_id, period_key and genres with "
                             f"probability, threshold, propensity, shown): {error!r}") from None
        for genre, c in genres.items():
            if not 0 < c.propensity <= 1 or c.shown != (c.probability >= c.threshold):
                raise ValueError(f"inconsistent logged decision for {genre!r}: {asdict(c)}; the propensity must be in "
                                 "(0, 1] and shown must be probability >= threshold")
        return decision


class GenreThresholds:
    """One Thompson-sampling bandit per genre over candidate thresholds; decides, learns and reports."""

    def __init__(self, genres: Sequence[str], thresholds: Sequence[float] = DEFAULT_THRESHOLDS, floor: float = 0.1,
                 warmup: int = 20, draws: int = 10_000, seed: int = 0, salt: str = "genre-thresholds",
                 baseline: float = DEFAULT_THRESHOLD):
        self.thresholds = check_thresholds(thresholds)
        if not genres or len(set(genres)) != len(genres):
            raise ValueError(f"the layer needs distinct genres (the model's genres); got {list(genres)}")
        self.floor, self.warmup, self.draws, self.seed = float(floor), int(warmup), int(draws), int(seed)
        self.salt, self.baseline = str(salt), float(baseline)
        # Arm names are the thresholds written exactly, so a logged float finds its arm again after JSON.
        self._arm = {t: repr(t) for t in self.thresholds}
        self.bandits: dict[str, ThompsonSampling] = {
            genre: ThompsonSampling(list(self._arm.values()), draws=self.draws, seed=self.seed, floor=self.floor,
                                    warmup=self.warmup) for genre in genres}
        self._distributions: dict[str, np.ndarray] = {}

    @property
    def genres(self) -> tuple[str, ...]:
        """The genres the layer decides for."""
        return tuple(self.bandits)

    def distribution(self, genre: str) -> dict[float, float]:
        """The genre's current distribution over thresholds (what a decision draws from)."""
        self._bandit(genre)
        return dict(zip(self.thresholds, self._probabilities(genre).tolist()))

    def decide(self, user_id: str, period_key: str, probabilities: Mapping[str, float]) -> ThresholdDecision:
        """Per genre in ``probabilities``: the user's sticky threshold for the period, its propensity, and whether
        the genre is shown (probability >= threshold). A genre the layer does not know raises ValueError."""
        unknown = sorted(set(probabilities) - set(self.bandits))
        if unknown:
            raise ValueError(f"genres {unknown} are not in the policy layer ({list(self.bandits)}); build the layer "
                             "over the champion's genres")
        choices = {}
        for genre, probability in probabilities.items():
            probability = float(probability)
            if not 0 <= probability <= 1:
                raise ValueError(f"the probability of {genre!r} must be in [0, 1]; got {probability!r}")
            p, bandit = self._probabilities(genre), self.bandits[genre]
            arm = sticky_arm(f"{self.salt}:{genre}", user_id, dict(zip(bandit.arms, p.tolist())), period_key)
            threshold, propensity = self.thresholds[bandit.index(arm)], float(p[bandit.index(arm)])
            choices[genre] = GenreChoice(probability, threshold, propensity, probability >= threshold)
        return ThresholdDecision(user_id, period_key, choices)

    def learn(self, labelled: Iterable[tuple[ThresholdDecision, Collection[str]]]) -> None:
        """Learn from decisions paired with the movie's true genres: reward 1 per genre where show/hide was right.

        Apply each labelled decision once (e.g. per labelled partition), or rebuild with ``learn_state``. A bad
        record raises ValueError before anything is learned, so a batch is learned whole or not at all.
        """
        rewards = []
        for decision, true_genres in labelled:
            for genre, choice in decision.choices.items():
                arm = self._arm_of(genre, choice.threshold)
                rewards.append((genre, arm, float(choice.shown == (genre in true_genres))))
        for genre, arm, reward in rewards:
            self.bandits[genre].update(arm, reward)
            self._distributions.pop(genre, None)

    def add_evidence(self, genre: str, threshold: float, decisions: float, reward_sum: float) -> None:
        """Learn ``decisions`` rewards summing to ``reward_sum`` for ``genre`` at ``threshold`` at once: what
        ``learn`` does one decision at a time, for logs already summed in the warehouse (a reward may be a share)."""
        arm = self._arm_of(genre, threshold)
        if decisions < 0 or not 0 <= reward_sum <= decisions:
            raise ValueError(f"{genre!r} at {threshold}: need 0 <= reward_sum <= decisions; got {reward_sum} of "
                             f"{decisions}")
        bandit = self.bandits[genre]
        i = bandit.index(arm)
        bandit.counts[i] += decisions
        bandit.reward_sums[i] += reward_sum
        self._distributions.pop(genre, None)

    def reset(self) -> None:
        """Back to the prior: every genre forgets what it learned and warms up again; the configuration stays."""
        for bandit in self.bandits.values():
            bandit.reset()
        self._distributions.clear()

    def current_thresholds(self) -> dict[str, float]:
        """Per genre, the threshold with the highest posterior mean accuracy once it is ahead of the baseline's with
        95% posterior probability; until then the baseline (the candidate nearest it).

        Without that bar an arm "wins" on no evidence: where every threshold is always right (a genre no listed movie
        has), each arm's posterior mean is (1 + n) / (2 + n), and the arm drawn most often would be reported as
        learned."""
        return {genre: self._best(bandit) for genre, bandit in self.bandits.items()}

    def summary_lines(self) -> list[str]:
        """One line per genre for logs and the CLI, e.g. "documentary: threshold 0.30 (was 0.50), 412 labelled..."."""
        return [f"{genre}: threshold {self._best(b):.2f} (was {self.baseline:.2f}), {b.counts.sum():.0f} labelled "
                f"decisions" for genre, b in self.bandits.items()]

    def state(self) -> dict:
        """Everything needed to rebuild the layer, as JSON-ready values."""
        return {"thresholds": list(self.thresholds),
                "params": {"floor": self.floor, "warmup": self.warmup, "draws": self.draws, "seed": self.seed,
                           "salt": self.salt, "baseline": self.baseline},
                "genres": {genre: bandit.state() for genre, bandit in self.bandits.items()}}

    @classmethod
    def from_state(cls, state: Mapping) -> GenreThresholds:
        """Rebuild a layer from ``state()``."""
        try:
            layer = cls(list(state["genres"]), state["thresholds"], **state["params"])
            for genre, bandit_state in state["genres"].items():
                bandit = ThompsonSampling.from_state(bandit_state)
                if bandit.arms != layer.bandits[genre].arms:
                    raise ValueError(f"{genre!r} has arms {list(bandit.arms)}, not the thresholds "
                                     f"{state['thresholds']}")
                layer.bandits[genre] = bandit
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a policy layer state (needs thresholds, params, genres): {error!r}") from None
        return layer

    def _arm_of(self, genre: str, threshold: float) -> str:
        """The arm of a logged threshold for a known genre; refuses a threshold this layer does not have."""
        self._bandit(genre)
        if float(threshold) not in self._arm:
            raise ValueError(f"{genre!r} was decided with threshold {threshold}, not one of this layer's "
                             f"{list(self.thresholds)}; learn only from a layer with the same ones")
        return self._arm[float(threshold)]

    def _bandit(self, genre: str) -> ThompsonSampling:
        if genre not in self.bandits:
            raise ValueError(f"genre {genre!r} is not in the policy layer ({list(self.bandits)})")
        return self.bandits[genre]

    def _probabilities(self, genre: str) -> np.ndarray:
        # Thompson sampling's distribution costs draws x arms samples; it changes only when the genre learns.
        if genre not in self._distributions:
            self._distributions[genre] = self.bandits[genre].probabilities()
        return self._distributions[genre]

    def _best(self, bandit: ThompsonSampling) -> float:
        alpha = bandit.prior_alpha + bandit.reward_sums
        beta = bandit.prior_beta + bandit.counts - bandit.reward_sums
        means = alpha / (alpha + beta)
        variances = alpha * beta / ((alpha + beta) ** 2 * (alpha + beta + 1))
        base = bandit.index(self._arm[nearest(self.thresholds, self.baseline)])
        # Rounded so that float noise cannot break a tie (the prior ties every arm) away from the baseline.
        best = bandit.index(self._arm[max(self.thresholds, key=lambda t: (
            round(means[bandit.index(self._arm[t])], 12), -abs(t - self.baseline)))])
        spread = math.sqrt(variances[best] + variances[base])
        ahead = best != base and (means[best] - means[base]) > SURE_Z * spread
        return self.thresholds[best if ahead else base]

def nearest(thresholds: Sequence[float], value: float) -> float:
    """The candidate threshold nearest ``value`` (the model's own threshold, as the layer can serve it)."""
    return min(thresholds, key=lambda t: abs(t - value))


def check_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    """The candidate thresholds as floats: at least two, distinct, each strictly between 0 and 1."""
    values = tuple(float(t) for t in thresholds)
    if len(values) < 2 or len(set(values)) != len(values) or not all(0 < t < 1 for t in values):
        raise ValueError(f"candidate thresholds must be at least two distinct numbers strictly between 0 and 1, "
                         f"e.g. {list(DEFAULT_THRESHOLDS)}; got {list(values)}")
    return values


def learn_state(state: Mapping, labelled: Iterable[tuple[ThresholdDecision, Collection[str]]]) -> dict:
    """The state after learning ``labelled`` from ``state``: a pure function, so an asset can rebuild from logs."""
    layer = GenreThresholds.from_state(state)
    layer.learn(labelled)
    return layer.state()


def off_policy_value(labelled: Iterable[tuple[ThresholdDecision, Collection[str]]], genre: str,
                     target: Mapping[float, float], thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                     estimator: str = "snips", n_resamples: int = 1000, seed: int = 0) -> off_policy.Estimate:
    """A candidate's accuracy for ``genre`` estimated from logged decisions, with their logged propensities.

    ``target`` is the candidate's distribution over thresholds: ``{0.3: 1.0}`` for "always 0.3", or
    ``candidate.distribution(genre)`` for another layer's state. Compare with ``logged_value`` (``off_policy.gate``).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {list(ESTIMATORS)}")
    thresholds = check_thresholds(thresholds)
    target_row = [float(target.get(t, 0.0)) for t in thresholds]
    if set(target) - set(thresholds) or not math.isclose(sum(target_row), 1.0, abs_tol=1e-6):
        raise ValueError(f"target needs probabilities over the thresholds {list(thresholds)} summing to 1; "
                         f"got {dict(target)}")
    actions, rewards, propensities = _logged(labelled, genre)
    unknown = set(actions) - set(thresholds)
    if unknown:
        raise ValueError(f"logged thresholds {sorted(unknown)} for {genre!r} are not among {list(thresholds)}")
    positions = [thresholds.index(t) for t in actions]
    return ESTIMATORS[estimator](positions, rewards, propensities, np.tile(target_row, (len(positions), 1)),
                                 n_resamples=n_resamples, seed=seed)


def logged_value(labelled: Iterable[tuple[ThresholdDecision, Collection[str]]], genre: str, n_resamples: int = 1000,
                 seed: int = 0) -> off_policy.Estimate:
    """The logging policy's own accuracy for ``genre``: the mean reward of the logged decisions."""
    return off_policy.on_policy(_logged(labelled, genre)[1], n_resamples=n_resamples, seed=seed)


def _logged(labelled, genre: str) -> tuple[list[float], list[float], list[float]]:
    """The logged thresholds, rewards and propensities of ``genre``'s decisions."""
    rows = [(d.choices[genre], genre in true) for d, true in labelled if genre in d.choices]
    if not rows:
        raise ValueError(f"no logged decisions for {genre!r}")
    return ([c.threshold for c, _ in rows], [float(c.shown == member) for c, member in rows],
            [c.propensity for c, _ in rows])

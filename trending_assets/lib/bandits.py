"""Bandit policies that know the exact probability of every decision, so their logs can be evaluated off-policy.

Every policy computes the full distribution over its arms (``probabilities``), then draws from it (``choose``): the
logged propensity is the probability the decision really had, which keeps ``off_policy`` estimates unbiased. Two
rules shape every distribution: a warm-up (uniform until every arm has ``warmup`` observations) and an exploration
floor (``p = (1 - floor) * p_policy + floor / K``, so every arm keeps ``floor / K`` of the traffic and any other
policy over the same arms can be evaluated from the logs).

Thompson sampling's "probability that this arm is the best" has no closed form beyond two arms, so it is estimated
from a fixed number of posterior draws, seeded alike on every call: the same state always gives the same
distribution, so it can be recomputed from a stored state. The estimate is off by about ``sqrt(p / draws)``, but the
draw uses exactly the estimate, so the propensity stays exact. Rewards are in [0, 1] (a click, a save, a listen).

Drawing per user and period (sticky assignment) and auditing the realised allocation live in ``bandit_allocation``.
"""

from __future__ import annotations

import abc

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from trending_assets.lib.bandit_allocation import inverse_cdf, sticky_arm


@dataclass(frozen=True)
class Decision:
    """One decision: the arm, its propensity (the probability it had) and the distribution it was drawn from."""

    arm: str
    propensity: float
    probabilities: dict[str, float]


class Policy(abc.ABC):
    """What every policy shares: named arms, observation counts, warm-up, exploration floor, state and draws."""

    PARAMS: tuple[str, ...] = ()  # constructor arguments beyond arms, floor and warmup, kept in the state
    LEARNED: tuple[str, ...] = ("counts", "reward_sums")  # arrays the policy learns, kept in the state

    def __init__(self, arms: Sequence[str], floor: float = 0.0, warmup: int = 0):
        arms = tuple(arms)
        if len(arms) < 2 or len(set(arms)) != len(arms) or not all(isinstance(a, str) and a for a in arms):
            raise ValueError(f"a policy needs at least 2 distinct, non-empty arm names; got {list(arms)}")
        if not 0 <= floor < 1:
            raise ValueError(f"floor is the share of traffic spread evenly over the arms, in [0, 1); got {floor!r}")
        if warmup < 0 or int(warmup) != warmup:
            raise ValueError(f"warmup is the observations every arm needs first, a whole number >= 0; got {warmup!r}")
        self.arms, self.floor, self.warmup = arms, float(floor), int(warmup)
        self.reset()

    def reset(self) -> None:
        """Forget everything learned; the configuration stays, and the warm-up starts over."""
        self.counts = np.zeros(len(self.arms))
        self.reward_sums = np.zeros(len(self.arms))

    def index(self, arm: str) -> int:
        """The arm's position in ``arms`` (and in ``probabilities()``)."""
        try:
            return self.arms.index(arm)
        except ValueError:
            raise ValueError(f"unknown arm {arm!r}; this policy's arms are {list(self.arms)}") from None

    @property
    def warming_up(self) -> bool:
        """Whether some arm still has fewer than ``warmup`` observations."""
        return bool(self.counts.min() < self.warmup)

    def probabilities(self, context: Sequence[float] | None = None) -> np.ndarray:
        """The distribution this decision draws from, in ``arms`` order: warm-up and floor applied, sums to 1."""
        context = self._check_context(context)
        k = len(self.arms)
        if self.warming_up:
            return np.full(k, 1 / k)
        return (1 - self.floor) * self._policy_probabilities(context) + self.floor / k

    def choose(self, rng: np.random.Generator, context: Sequence[float] | None = None) -> Decision:
        """Draw an arm from ``probabilities(context)``; the decision carries the chosen arm's propensity."""
        p = self.probabilities(context)
        return self.decision(self.arms[inverse_cdf(p, rng.random())], p)

    def choose_sticky(self, salt: str, user_id: str, period_key: str,
                      context: Sequence[float] | None = None) -> Decision:
        """The user's arm for the period (see ``bandit_allocation.sticky_arm``), with its propensity."""
        p = self.probabilities(context)
        return self.decision(sticky_arm(salt, user_id, dict(zip(self.arms, p.tolist())), period_key), p)

    def decision(self, arm: str, probabilities: np.ndarray) -> Decision:
        """The record of choosing ``arm`` from ``probabilities`` (in ``arms`` order)."""
        return Decision(arm, float(probabilities[self.index(arm)]), dict(zip(self.arms, probabilities.tolist())))

    def update(self, arm: str, reward: float, context: Sequence[float] | None = None) -> None:
        """Learn from one observed reward (in [0, 1]) of ``arm``, shown in ``context``."""
        i, context = self.index(arm), self._check_context(context)
        if not 0 <= reward <= 1:
            raise ValueError(f"rewards must be in [0, 1] (a click is 1, no click 0); got {reward!r} for {arm!r}")
        self._learn(i, float(reward), context)
        self.counts[i] += 1
        self.reward_sums[i] += reward

    def state(self) -> dict:
        """Everything needed to rebuild the policy, as JSON-ready values."""
        return {"policy": type(self).__name__, "arms": list(self.arms), "floor": self.floor, "warmup": self.warmup,
                "params": {name: getattr(self, name) for name in self.PARAMS},
                **{name: getattr(self, name).tolist() for name in self.LEARNED}}

    @classmethod
    def from_state(cls, state: Mapping) -> Policy:
        """Rebuild a policy from ``state()``; on a subclass, the state must be of that policy."""
        kind = POLICIES.get(state.get("policy"))
        if kind is None or not issubclass(kind, cls):
            raise ValueError(f"state is of policy {state.get('policy')!r}; expected one of "
                             f"{[name for name, p in POLICIES.items() if issubclass(p, cls)]}")
        policy = kind(state["arms"], floor=state["floor"], warmup=state["warmup"], **state["params"])
        for name in policy.LEARNED:
            values = np.asarray(state[name], dtype=float)
            if values.shape != getattr(policy, name).shape:
                raise ValueError(f"state {name!r} should have shape {getattr(policy, name).shape}; got {values.shape}")
            setattr(policy, name, values)
        return policy

    # Hooks for subclasses. Context-free policies accept and ignore a context, so callers treat all policies alike;
    # counts and reward sums are all they learn.
    def _check_context(self, context):
        return None

    @abc.abstractmethod
    def _policy_probabilities(self, context) -> np.ndarray:
        """The policy's own distribution over the arms, before warm-up and floor."""

    def _learn(self, i: int, reward: float, context) -> None:
        pass

    def _means(self) -> np.ndarray:
        # Untried arms score +inf, so greedy rules try every arm once before they compare means.
        return np.divide(self.reward_sums, self.counts, out=np.full(len(self.arms), np.inf), where=self.counts > 0)


class ThompsonSampling(Policy):
    """Beta-Bernoulli Thompson sampling: each arm's share is the posterior probability that it is the best."""

    PARAMS = ("prior_alpha", "prior_beta", "draws", "seed")

    def __init__(self, arms: Sequence[str], prior_alpha: float = 1.0, prior_beta: float = 1.0, draws: int = 10_000,
                 seed: int = 0, floor: float = 0.0, warmup: int = 0):
        if prior_alpha <= 0 or prior_beta <= 0 or draws < 1:
            raise ValueError(f"need prior_alpha > 0, prior_beta > 0 and draws >= 1; got {prior_alpha!r}, "
                             f"{prior_beta!r}, {draws!r}")
        self.prior_alpha, self.prior_beta, self.draws, self.seed = float(prior_alpha), float(prior_beta), draws, seed
        super().__init__(arms, floor, warmup)

    def _policy_probabilities(self, context) -> np.ndarray:
        alpha = self.prior_alpha + self.reward_sums
        beta = self.prior_beta + self.counts - self.reward_sums
        # The same seed on every call: the distribution is a function of the posterior alone.
        samples = np.random.default_rng(self.seed).beta(alpha, beta, size=(self.draws, len(self.arms)))
        return np.bincount(samples.argmax(axis=1), minlength=len(self.arms)) / self.draws


class UCB1(Policy):
    """UCB1 (Auer et al., 2002): all mass on the arm with the highest ``mean + sqrt(2 ln t / n)``."""

    def _policy_probabilities(self, context) -> np.ndarray:
        bonus = np.sqrt(2 * math.log(max(self.counts.sum(), 1)) / np.maximum(self.counts, 1))
        return argmax_probabilities(self._means() + bonus)


class EpsilonGreedy(Policy):
    """Epsilon-greedy: ``epsilon`` of the traffic uniform, the rest on the best observed mean."""

    PARAMS = ("epsilon",)

    def __init__(self, arms: Sequence[str], epsilon: float = 0.1, floor: float = 0.0, warmup: int = 0):
        if not 0 <= epsilon <= 1:
            raise ValueError(f"epsilon is the share of traffic explored uniformly, in [0, 1]; got {epsilon!r}")
        self.epsilon = float(epsilon)
        super().__init__(arms, floor, warmup)

    def _policy_probabilities(self, context) -> np.ndarray:
        k = len(self.arms)
        return (1 - self.epsilon) * argmax_probabilities(self._means()) + self.epsilon / k


class LinUCB(Policy):
    """Disjoint LinUCB (Li et al., 2010): a ridge regression of reward on context per arm, mass on the best bound.

    The context is a feature vector of length ``dim`` (e.g. a user's genre-taste profile, with a constant 1 if the
    arms' base rates differ); an arm's score is ``theta . x + alpha * sqrt(x' A^-1 x)`` with ``A = ridge * I + X'X``.
    """

    PARAMS = ("dim", "alpha", "ridge")
    LEARNED = (*Policy.LEARNED, "a", "b")

    def __init__(self, arms: Sequence[str], dim: int, alpha: float = 1.0, ridge: float = 1.0, floor: float = 0.0,
                 warmup: int = 0):
        if dim < 1 or alpha < 0 or ridge <= 0:
            raise ValueError(f"need dim >= 1, alpha >= 0 and ridge > 0; got {dim!r}, {alpha!r}, {ridge!r}")
        self.dim, self.alpha, self.ridge = int(dim), float(alpha), float(ridge)
        super().__init__(arms, floor, warmup)

    def reset(self) -> None:
        """Forget everything learned: counts, and each arm's regression back to the ridge prior."""
        super().reset()
        self.a = np.tile(self.ridge * np.eye(self.dim), (len(self.arms), 1, 1))
        self.b = np.zeros((len(self.arms), self.dim))
        self._solved = None

    def _check_context(self, context) -> np.ndarray:
        x = np.asarray(context if context is not None else (), dtype=float)
        if x.shape != (self.dim,) or not np.all(np.isfinite(x)):
            raise ValueError(f"LinUCB needs a context of {self.dim} finite features; got {context!r}")
        return x

    def _policy_probabilities(self, x: np.ndarray) -> np.ndarray:
        if self._solved is None:  # invert once per update, not once per decision
            a_inv = np.linalg.inv(self.a)
            self._solved = a_inv, np.einsum("kij,kj->ki", a_inv, self.b)
        a_inv, theta = self._solved
        width = np.sqrt(np.maximum(np.einsum("i,kij,j->k", x, a_inv, x), 0))  # rounding can dip just below 0
        return argmax_probabilities(theta @ x + self.alpha * width)

    def _learn(self, i: int, reward: float, x: np.ndarray) -> None:
        self.a[i] += np.outer(x, x)
        self.b[i] += reward * x
        self._solved = None


POLICIES: dict[str, type[Policy]] = {p.__name__: p for p in (ThompsonSampling, UCB1, EpsilonGreedy, LinUCB)}


def argmax_probabilities(scores: np.ndarray) -> np.ndarray:
    """All mass on the highest score, split evenly between ties."""
    best = np.isclose(scores, scores.max(), rtol=0, atol=1e-12)
    return best / best.sum()

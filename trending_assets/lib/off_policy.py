"""Off-policy evaluation: what a candidate policy would have earned, estimated from the logs of the live one.

Each logged row holds the arm shown, its reward and its logging propensity (the probability the live policy gave
that arm, see ``bandits``); the candidate gives its probability of every arm on every row. With importance weights
``w = pi(a | x) / propensity``:

* IPS: ``mean(w * r)``. Unbiased when every arm the candidate may pick had a positive propensity; noisy when the
  weights are large.
* Self-normalised IPS: ``sum(w * r) / sum(w)``. Slightly biased (vanishing with n), much less noisy.
* Doubly robust: a reward model's prediction for the candidate's arms, corrected by IPS on the model's errors.
  Unbiased if either the propensities or the reward model are right, and usually the least noisy.

Intervals are percentile bootstraps over rows, or over groups of rows when ``groups`` names each row's group
(e.g. its user). A user who makes many requests contributes rows that share the user's taste, so they are not
independent: resampling rows then treats 40 requests of one user as 40 users' worth of evidence, and the interval
comes out too narrow. The cluster bootstrap draws groups with replacement and takes all their rows. Every
estimator here is a ratio of sums, so each group is reduced once to its sums and a resample adds up drawn group
sums: exactly the resample of their rows, at the cost of a row bootstrap over the groups. The reward model is fitted
once on all rows and held fixed in the resamples, a common simplification that makes the DR interval a little
narrower than a full refit would.
``effective_sample_size`` is ``sum(w)^2 / sum(w^2)``: how many on-policy rows the weighted logs are worth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

BOOTSTRAP_CHUNK = 100  # resamples drawn at once: 100 x 10k rows of int64 indices is 8 MB


@dataclass(frozen=True)
class Estimate:
    """A policy's estimated value (mean reward per decision) with its bootstrap interval."""

    estimator: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    effective_sample_size: float
    groups: int | None = None  # the groups the bootstrap resampled; None when it resampled rows

    def as_dict(self) -> dict:
        """The fields as plain Python values (for metadata and JSON)."""
        return asdict(self)


@dataclass(frozen=True)
class GateDecision:
    """Whether the candidate may go live, and why, with the two numbers that decided it."""

    passed: bool
    reason: str
    candidate_ci_low: float
    current_value: float


def ips(actions: Sequence, rewards: Sequence[float], propensities: Sequence[float], target_probabilities: np.ndarray,
        arms: Sequence[str] | None = None, n_resamples: int = 1000, seed: int = 0, level: float = 0.95,
        groups: Sequence | None = None) -> Estimate:
    """Inverse propensity scoring: the mean of ``w * r``.

    ``actions`` are arm positions (columns of ``target_probabilities``, shape rows x arms), or arm names with
    ``arms`` giving the column order. ``groups`` (one key per row, e.g. the user id) makes the interval a cluster
    bootstrap over the groups; every estimator here takes it.
    """
    a, r, p, pi = _logs(actions, rewards, propensities, target_probabilities, arms)
    w = pi[np.arange(a.size), a] / p
    return _estimate("ips", w * r, np.ones_like(w), w, n_resamples, seed, level, groups)


def snips(actions: Sequence, rewards: Sequence[float], propensities: Sequence[float],
          target_probabilities: np.ndarray, arms: Sequence[str] | None = None, n_resamples: int = 1000, seed: int = 0,
          level: float = 0.95, groups: Sequence | None = None) -> Estimate:
    """Self-normalised IPS: ``sum(w * r) / sum(w)``, re-normalised in every bootstrap resample."""
    a, r, p, pi = _logs(actions, rewards, propensities, target_probabilities, arms)
    w = pi[np.arange(a.size), a] / p
    if w.sum() == 0:
        raise ValueError("the target policy gives probability 0 to every logged action, so the logs say nothing "
                         "about it; log with an exploration floor")
    return _estimate("snips", w * r, w, w, n_resamples, seed, level, groups)


def doubly_robust(actions: Sequence, rewards: Sequence[float], propensities: Sequence[float],
                  target_probabilities: np.ndarray, predicted_rewards: np.ndarray | None = None,
                  contexts: np.ndarray | None = None, arms: Sequence[str] | None = None, n_resamples: int = 1000,
                  seed: int = 0, level: float = 0.95, groups: Sequence | None = None) -> Estimate:
    """Doubly robust: ``sum_a pi(a) q(a) + w * (r - q(action))`` per row, ``q`` the predicted reward of each arm.

    ``predicted_rewards`` (rows x arms) come from any reward model; without them, ``reward_model`` is fitted on
    these logs (per-arm means, or per-arm ridge regressions when ``contexts`` are given).
    """
    a, r, p, pi = _logs(actions, rewards, propensities, target_probabilities, arms)
    q = reward_model(a, r, pi.shape[1], contexts) if predicted_rewards is None else _matrix(
        "predicted_rewards", predicted_rewards, pi.shape)
    rows = np.arange(a.size)
    w = pi[rows, a] / p
    terms = np.sum(pi * q, axis=1) + w * (r - q[rows, a])
    return _estimate("doubly_robust", terms, np.ones_like(w), w, n_resamples, seed, level, groups)


def on_policy(rewards: Sequence[float], n_resamples: int = 1000, seed: int = 0, level: float = 0.95,
              groups: Sequence | None = None) -> Estimate:
    """The logging policy's own value: the mean logged reward, with the same bootstrap interval (over ``groups``
    when given, as the estimators it is compared with)."""
    r = _vector("rewards", rewards)
    return _estimate("on_policy", r, np.ones_like(r), np.ones_like(r), n_resamples, seed, level, groups)


def reward_model(actions: Sequence[int], rewards: Sequence[float], n_arms: int, contexts: np.ndarray | None = None,
                 ridge: float = 1.0) -> np.ndarray:
    """Predicted reward of every arm on every row (rows x arms), fitted on the logged rows of each arm.

    Without contexts: each arm's mean logged reward (the mean over all rows for an arm never logged). With contexts
    (rows x features): a ridge regression per arm on the features plus an intercept (not penalised).
    """
    a, r = np.asarray(actions), _vector("rewards", rewards)
    if a.shape != r.shape or not np.issubdtype(a.dtype, np.integer) or np.any((a < 0) | (a >= n_arms)):
        raise ValueError(f"actions must be arm positions in [0, {n_arms}), one per reward")
    if contexts is None:
        sums, counts = np.bincount(a, r, n_arms), np.bincount(a, minlength=n_arms)
        means = np.divide(sums, counts, out=np.full(n_arms, r.mean()), where=counts > 0)
        return np.tile(means, (a.size, 1))
    x = np.asarray(contexts, dtype=float)
    if x.ndim != 2 or x.shape[0] != a.size or not np.all(np.isfinite(x)):
        raise ValueError(f"contexts need one finite feature row per logged row ({a.size}); got shape {x.shape}")
    design = np.column_stack([np.ones(a.size), x])
    penalty = ridge * np.eye(design.shape[1])
    penalty[0, 0] = 0.0  # the intercept carries the arm's base rate and should not shrink towards 0
    predictions = np.empty((a.size, n_arms))
    for arm in range(n_arms):
        rows = a == arm
        if not rows.any():
            predictions[:, arm] = r.mean()
            continue
        coef = np.linalg.lstsq(design[rows].T @ design[rows] + penalty, design[rows].T @ r[rows], rcond=None)[0]
        predictions[:, arm] = design @ coef
    return predictions


def gate(candidate: Estimate, current: Estimate | float, min_effective_sample_size: float = 100.0) -> GateDecision:
    """A candidate goes live only if its interval's lower bound is above the current policy's value.

    ``current`` is the current policy's value: its ``on_policy`` estimate from the logs, its own off-policy
    estimate (its point value is used), or a number. The lower bound, not the point estimate, must clear it, so a
    candidate that is merely uncertain does not replace one that works. Below ``min_effective_sample_size`` the
    bootstrap interval itself is not trusted, and the gate refuses.
    """
    current_value = current.value if isinstance(current, Estimate) else float(current)
    low, value, name = candidate.ci_low, candidate.value, candidate.estimator
    if candidate.effective_sample_size < min_effective_sample_size:
        return GateDecision(False, f"refused: the {name} estimate rests on an effective sample of "
                                   f"{candidate.effective_sample_size:.0f} rows (< {min_effective_sample_size:g}), "
                                   f"too few to trust its lower bound {low:.4f} against the current "
                                   f"{current_value:.4f}; log more with exploration", low, current_value)
    if low > current_value:
        return GateDecision(True, f"passed: the candidate's {name} lower bound {low:.4f} (value {value:.4f}) is "
                                  f"above the current policy's value {current_value:.4f}", low, current_value)
    why = "worse" if value <= current_value else "not surely better: its interval is too wide"
    return GateDecision(False, f"refused: the candidate's {name} lower bound {low:.4f} (value {value:.4f}) is not "
                               f"above the current policy's value {current_value:.4f} ({why})", low, current_value)


def effective_sample_size(weights: np.ndarray) -> float:
    """``sum(w)^2 / sum(w^2)``: n for equal weights, less the more a few rows dominate."""
    squares = float(np.sum(np.square(weights)))
    return float(np.sum(weights)) ** 2 / squares if squares > 0 else 0.0


def _estimate(name: str, numerators: np.ndarray, denominators: np.ndarray, weights: np.ndarray, n_resamples: int,
              seed: int, level: float, groups: Sequence | None = None) -> Estimate:
    """The ratio ``sum(numerators) / sum(denominators)``, with a percentile bootstrap over rows or ``groups``.

    The resampled units are the rows, or each group's sums of its rows: a resample of G units draws G with
    replacement, so a group's rows always travel together and the ratio is re-normalised on what was drawn.
    """
    if n_resamples < 1 or not 0 < level < 1:
        raise ValueError(f"need n_resamples >= 1 and level in (0, 1); got {n_resamples!r} and {level!r}")
    unit_numerators, unit_denominators = numerators, denominators
    if groups is not None:
        codes, n_groups = _group_codes(groups, numerators.size)
        unit_numerators = np.bincount(codes, numerators, n_groups)
        unit_denominators = np.bincount(codes, denominators, n_groups)
    units = unit_numerators.size
    rng = np.random.default_rng(seed)
    values = np.empty(n_resamples)
    for start in range(0, n_resamples, BOOTSTRAP_CHUNK):
        drawn = rng.integers(0, units, size=(min(BOOTSTRAP_CHUNK, n_resamples - start), units))
        denominator = unit_denominators[drawn].sum(axis=1)
        # A resample can miss every row the target weights (SNIPS only): it has no value, and is left out.
        values[start:start + drawn.shape[0]] = np.divide(unit_numerators[drawn].sum(axis=1), denominator,
                                                         out=np.full(drawn.shape[0], np.nan), where=denominator > 0)
    low, high = np.nanquantile(values, [(1 - level) / 2, (1 + level) / 2])
    value = float(numerators.sum() / denominators.sum())
    return Estimate(name, value, float(low), float(high), numerators.size, effective_sample_size(weights),
                    None if groups is None else units)


def _group_codes(groups: Sequence, n: int) -> tuple[np.ndarray, int]:
    """Each row's group as a position in ``[0, number of groups)``, in order of first appearance, and the count.

    Keys may be anything hashable (user ids, numbers, None for rows of unknown users, which form one group).
    """
    keys = list(groups)
    if len(keys) != n:
        raise ValueError(f"groups need one key per logged row ({n}); got {len(keys)}")
    positions: dict = {}
    codes = np.fromiter((positions.setdefault(key, len(positions)) for key in keys), dtype=np.int64, count=n)
    return codes, len(positions)


def _logs(actions, rewards, propensities, target_probabilities, arms):
    """Validated arrays: action positions, rewards, propensities and the target's rows x arms probabilities."""
    r, p = _vector("rewards", rewards), _vector("propensities", propensities)
    pi = np.asarray(target_probabilities, dtype=float)
    if pi.ndim != 2 or pi.shape[1] < 2:
        raise ValueError(f"target_probabilities need one row per logged row and one column per arm; got {pi.shape}")
    a = _positions(actions, arms, pi.shape[1])
    if not a.size == r.size == p.size == pi.shape[0]:
        raise ValueError(f"logged columns differ in length: {a.size} actions, {r.size} rewards, {p.size} "
                         f"propensities, {pi.shape[0]} target rows; each logged row needs all four")
    if np.any(p <= 0) or np.any(p > 1):
        raise ValueError(f"propensities must be in (0, 1]; got min {p.min():g}, max {p.max():g}. A propensity of 0 "
                         "means the logged arm could not have been chosen: the log is wrong")
    if np.any(pi < 0) or not np.allclose(pi.sum(axis=1), 1.0, rtol=0, atol=1e-6):
        raise ValueError("each row of target_probabilities must be non-negative and sum to 1 over the arms")
    return a, r, p, pi


def _positions(actions, arms, n_arms: int) -> np.ndarray:
    """Arm positions from positions, or from names with ``arms`` giving their order."""
    if arms is not None:
        arms = list(arms)
        if len(arms) != n_arms:
            raise ValueError(f"{len(arms)} arms named but target_probabilities has {n_arms} columns")
        index = {arm: i for i, arm in enumerate(arms)}
        unknown = set(actions) - set(index)
        if unknown:
            raise ValueError(f"unknown arms {sorted(unknown)} in actions; the arms are {arms}")
        return np.array([index[arm] for arm in actions], dtype=int)
    a = np.asarray(actions)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer) or np.any((a < 0) | (a >= n_arms)):
        raise ValueError(f"actions must be arm positions in [0, {n_arms}) (or names, with arms= their order)")
    return a


def _vector(name: str, values) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be a non-empty list of finite numbers; got shape {v.shape}")
    return v


def _matrix(name: str, values, shape: tuple[int, int]) -> np.ndarray:
    m = np.asarray(values, dtype=float)
    if m.shape != shape or not np.all(np.isfinite(m)):
        raise ValueError(f"{name} must be finite, rows x arms {shape}; got shape {m.shape}")
    return m

"""Turning a bandit's distribution into assignments, and checking afterwards that the assignments kept to it.

Off-policy estimates are only as good as the logged propensities: each must be the probability the decision really
had. ``inverse_cdf`` draws from a distribution so that a uniform number falls on each arm with exactly its
probability. ``sticky_arm`` feeds it a number hashed from the user and the period instead of a random one, so a user
keeps one arm for the whole period (no flicker between requests, and one user's behaviour is not spread over
several arms), yet over users each arm is still drawn with exactly its probability: the logged propensity stays
correct, as long as the distribution does not change within the period.

``allocation_srm`` is the audit of that promise. Propensities differ from decision to decision as the policy
learns, so the traffic an arm was promised is the sum of its logged probabilities, and the realised counts are
compared with those sums. Run it per period or per state version, not only over all time: a bias that favours one
arm while the policy leans one way and another arm after it turns can cancel out in the totals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from trending_assets.lib.ab_stats import SrmResult, srm_check
from trending_assets.lib.assignment import bucket

TOLERANCE = 1e-6  # how far from 1 a distribution's sum may be before it is rejected


def sticky_arm(salt: str, user_id: str, probabilities: Mapping[str, float], period_key: str) -> str:
    """The user's arm for the period: the same on every call while the probabilities stay the same.

    A uniform number from sha256 of salt, period and user (as ``assignment.bucket``) picks the arm by inverse CDF,
    so over users each arm is drawn with exactly its probability and the logged propensity stays correct. A new
    ``period_key`` (e.g. the date) redraws; update the policy's state at period boundaries to keep users' arms.
    """
    arms, p = distribution(probabilities, list(probabilities))
    u = (bucket(f"{salt}:{period_key}", user_id, 2**64) >> 11) / 2**53  # 53 bits: an exact float in [0, 1)
    return arms[inverse_cdf(p, u)]


def inverse_cdf(probabilities: np.ndarray, u: float) -> int:
    """The arm position a uniform ``u`` in [0, 1) falls on: arm i takes ``[p_0 + ... + p_(i-1), ... + p_i)``."""
    # An arm with probability 0 owns an empty interval and is never drawn; the clip absorbs a sum just below 1.
    return min(int(np.searchsorted(np.cumsum(probabilities), u, side="right")), len(probabilities) - 1)


def distribution(probabilities: Mapping[str, float] | Sequence[float], arms: Sequence[str]) -> tuple[list, np.ndarray]:
    """Validate a distribution over ``arms`` (a mapping by arm, or values in ``arms`` order) and return it aligned."""
    arms = list(arms)
    if isinstance(probabilities, Mapping):
        unknown = set(probabilities) - set(arms)
        if unknown:
            raise ValueError(f"unknown arms {sorted(unknown)} in probabilities; the arms are {arms}")
        p = np.array([probabilities.get(arm, 0.0) for arm in arms], dtype=float)
    else:
        p = np.asarray(probabilities, dtype=float)
    if p.shape != (len(arms),) or np.any(p < 0) or not math.isclose(p.sum(), 1.0, abs_tol=TOLERANCE):
        raise ValueError(f"probabilities need one non-negative value per arm {arms}, summing to 1; got {p.tolist()}")
    return arms, p


def allocation_srm(chosen_arms: Sequence[str], probabilities: Sequence[Mapping[str, float] | Sequence[float]],
                   arms: Sequence[str], threshold: float = 0.001) -> SrmResult:
    """Did each arm get the traffic the logged probabilities promised? A chi-square test of realised against intended.

    The intended count of an arm is the sum of its logged probabilities over the decisions. The chi-square treats
    the decisions as draws from their average distribution, which varies more than draws from each decision's own
    distribution: the test is conservative, so a flag is a real mismatch (a wrong propensity, a dropped log line).
    An arm chosen despite an intended count of 0 fails outright.
    """
    if len(chosen_arms) != len(probabilities) or not chosen_arms:
        raise ValueError(f"need one logged distribution per chosen arm, at least one decision; got "
                         f"{len(chosen_arms)} arms and {len(probabilities)} distributions")
    arms = list(arms)
    intended = np.sum([distribution(p, arms)[1] for p in probabilities], axis=0)
    index = {arm: i for i, arm in enumerate(arms)}
    unknown = set(chosen_arms) - set(arms)
    if unknown:
        raise ValueError(f"unknown chosen arms {sorted(unknown)}; the arms are {arms}")
    observed = np.bincount([index[arm] for arm in chosen_arms], minlength=len(arms))
    shares = intended / intended.sum()
    planned = intended > 0
    if np.any(observed[~planned] > 0):
        chi2, p_value = math.inf, 0.0
    elif planned.sum() < 2:
        chi2, p_value = 0.0, 1.0  # one arm had all the probability, and got all the decisions
    else:
        result = srm_check(observed[planned], shares[planned] / shares[planned].sum(), threshold)
        chi2, p_value = result.chi2, result.p_value
    return SrmResult(tuple(int(c) for c in observed), tuple(float(s) for s in shares), chi2, p_value, threshold)

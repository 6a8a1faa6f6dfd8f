"""Statistical honesty of the A/B test statistics: A/A false positives, power at the planned MDE, SRM and CUPED.

    .venv/bin/python bench/ab_honesty.py                                  # 1000 simulated experiments per check
    .venv/bin/python bench/ab_honesty.py --simulations 5000 --seed 1
    .venv/bin/python bench/ab_honesty.py --daily-users 4000 --mde 0.01    # another plan

Every experiment is simulated from daily binomial draws (``--daily-users`` enter per day, split 50/50, conversion
``--baseline``) and judged with the functions of ``trending_assets.lib.ab_stats`` and ``sequential``:

* A/A (no effect, ``--days`` days): the share of experiments declared significant by the fixed-horizon z-test
  at the end (target alpha +- 1.5 points), by naive daily peeking (stop at the first day with p < alpha; the
  check passes when the inflation shows, > 10%), and by the mSPRT with the same daily peeking (target <= alpha,
  with 1.5 points of Monte Carlo slack).
* Power: a true effect equal to ``--mde``, with the per-arm n from ``required_sample_size`` (planned power 80%)
  enrolled evenly over ``expected_duration_days``. The fixed-horizon z-test should find it 80% +- 5 points of the
  time. The mSPRT, peeking daily on the same users, pays for its validity in power: its rate is reported, and so
  is the n it needs for 80% (same daily enrolment, more days; the first day at which 80% of the simulated
  experiments have stopped).
* SRM: users assigned 45/55 instead of 50/50 over the A/A experiment; ``srm_check`` (threshold 0.001) should flag
  >= 99% of them and <= 0.5% of true 50/50 splits. A subtle 49/51 split is reported without a target.
* CUPED: a per-user metric whose pre-period covariate has correlation ``--rho``, A/A. The variance reduction should
  be rho^2 +- 0.02, the interval's width sqrt(1 - rho^2) +- 0.02 of plain Welch's, and the false-positive rate
  alpha +- 1.5 points, as for Welch.

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy
import statsmodels

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

from trending_assets.lib.ab_stats import (  # noqa: E402
    cuped_welch_test,
    expected_duration_days,
    required_sample_size,
    srm_check,
    two_proportion_test,
    welch_test,
)
from trending_assets.lib.sequential import default_tau2, msprt_p_values, sequential_two_proportion  # noqa: E402

PLANNED_POWER = 0.80


@dataclass(frozen=True)
class Row:
    """One line of the table: what was measured, its target in words, and whether it was met (None: no target)."""

    check: str
    measured: str
    target: str
    passed: bool | None


def share(hits: np.ndarray) -> str:
    return f"{int(np.sum(hits)):>5}/{hits.size:<5} = {np.mean(hits):6.1%}"


def within(value: float, target: float, tolerance: float) -> bool:
    return abs(value - target) <= tolerance


def daily_conversions(rng: np.random.Generator, sims: int, per_day: np.ndarray, rate: float) -> np.ndarray:
    """Conversions per simulated experiment and day: (sims, days) binomial draws on ``per_day`` users."""
    return rng.binomial(np.broadcast_to(per_day, (sims, per_day.size)), rate)


def aa_rows(rng: np.random.Generator, sims: int, days: int, per_arm_day: int, baseline: float, mde: float,
            alpha: float) -> list[Row]:
    per_day = np.full(days, per_arm_day)
    control, treatment = (daily_conversions(rng, sims, per_day, baseline) for _ in range(2))
    n = per_day.cumsum()
    s_c, s_t = control.cumsum(axis=1), treatment.cumsum(axis=1)
    daily_p = np.array([[two_proportion_test("m", s_c[i, d], n[d], s_t[i, d], n[d], alpha).p_value
                         for d in range(days)] for i in range(sims)])
    fixed = daily_p[:, -1] < alpha
    peeking = np.any(daily_p < alpha, axis=1)
    msprt = np.array([sequential_two_proportion(control[i], per_day, treatment[i], per_day, mde, alpha).significant
                      for i in range(sims)])
    return [
        Row(f"A/A fixed horizon z-test (day {days}), FPR", share(fixed), f"{alpha:.1%} +- 1.5 pts",
            within(np.mean(fixed), alpha, 0.015)),
        Row("A/A naive daily peeking z-test, FPR", share(peeking), "> 10% (inflation shows)", np.mean(peeking) > 0.10),
        Row("A/A mSPRT, daily peeking, FPR", share(msprt), f"<= {alpha:.1%} (+1.5 pts)",
            np.mean(msprt) <= alpha + 0.015),
    ]


def power_rows(rng: np.random.Generator, sims: int, daily_users: int, baseline: float, mde: float,
               alpha: float) -> list[Row]:
    n = required_sample_size(baseline, mde, alpha, PLANNED_POWER)
    days = expected_duration_days(n, daily_users)
    # Spread exactly n users per arm over the days, as evenly as whole users allow.
    per_day = np.diff(np.round(np.linspace(0, n, days + 1))).astype(int)
    control = daily_conversions(rng, sims, per_day, baseline)
    treatment = daily_conversions(rng, sims, per_day, baseline + mde)
    s_c, s_t = control.sum(axis=1), treatment.sum(axis=1)
    fixed = np.array([two_proportion_test("m", s_c[i], n, s_t[i], n, alpha).significant for i in range(sims)])
    msprt = np.array([sequential_two_proportion(control[i], per_day, treatment[i], per_day, mde, alpha).significant
                      for i in range(sims)])
    needed = sequential_n_for_power(rng, sims, daily_users // 2, baseline, mde, alpha, max_days=10 * days)
    needed_text = (f"{needed[0]} days, n = {needed[1]}/arm = {needed[1] / n:.2f}x" if needed
                   else f"> {10 * days} days")
    return [
        Row(f"power at mde {mde:g}: n = {n}/arm over {days} days, fixed z", share(fixed), "80% +- 5 pts",
            within(np.mean(fixed), PLANNED_POWER, 0.05)),
        Row("power, mSPRT with daily peeking, same n", share(msprt), "reported (< fixed)", None),
        Row("n the mSPRT needs for 80% (more days)", needed_text, "reported", None),
    ]


def sequential_n_for_power(rng: np.random.Generator, sims: int, per_arm_day: int, baseline: float, mde: float,
                           alpha: float, max_days: int) -> tuple[int, int] | None:
    """(days, n per arm) at which 80% of simulated mSPRT experiments have stopped, or None within ``max_days``.

    One long draw serves every horizon: the always-valid p-value is a running minimum, so the share of experiments
    stopped by day d only grows with d and the first day that reaches 80% is the answer.
    """
    per_day = np.full(max_days, per_arm_day)
    n = per_day.cumsum()
    rate_c = daily_conversions(rng, sims, per_day, baseline).cumsum(axis=1) / n
    rate_t = daily_conversions(rng, sims, per_day, baseline + mde).cumsum(axis=1) / n
    p = msprt_p_values(rate_t - rate_c, (rate_c * (1 - rate_c) + rate_t * (1 - rate_t)) / n, default_tau2(mde))
    stopped = np.mean(p < alpha, axis=0)
    reached = np.flatnonzero(stopped >= PLANNED_POWER)
    return (int(reached[0]) + 1, int(n[reached[0]])) if reached.size else None


def srm_rows(rng: np.random.Generator, sims: int, users: int) -> list[Row]:
    def flagged(treatment_share: float) -> np.ndarray:
        treatment = rng.binomial(users, treatment_share, sims)
        return np.array([not srm_check([users - t, t], [0.5, 0.5]).ok for t in treatment])

    balanced, injected, subtle = flagged(0.50), flagged(0.55), flagged(0.51)
    return [
        Row(f"SRM 45/55 of {users} users flagged (p < 0.001)", share(injected), ">= 99%", np.mean(injected) >= 0.99),
        Row(f"SRM 50/50 of {users} users flagged", share(balanced), "<= 0.5%", np.mean(balanced) <= 0.005),
        Row(f"SRM 49/51 of {users} users flagged", share(subtle), "reported", None),
    ]


def cuped_rows(rng: np.random.Generator, sims: int, per_arm: int, rho: float, alpha: float) -> list[Row]:
    reductions, width_ratios, cuped_hits, welch_hits = [], [], [], []
    for _ in range(sims):
        x_c, x_t = rng.normal(30, 10, per_arm), rng.normal(30, 10, per_arm)

        def metric(x: np.ndarray) -> np.ndarray:
            return 30 + rho * (x - 30) + math.sqrt(1 - rho**2) * 10 * rng.normal(size=x.size)

        y_c, y_t = metric(x_c), metric(x_t)
        plain, cuped = welch_test("minutes", y_c, y_t, alpha), cuped_welch_test("minutes", y_c, x_c, y_t, x_t, alpha)
        reductions.append(cuped.variance_reduction)
        width_ratios.append((cuped.ci_high - cuped.ci_low) / (plain.ci_high - plain.ci_low))
        cuped_hits.append(cuped.significant)
        welch_hits.append(plain.significant)
    reduction, width = float(np.mean(reductions)), float(np.mean(width_ratios))
    cuped_hits, welch_hits = np.array(cuped_hits), np.array(welch_hits)
    return [
        Row(f"CUPED variance reduction (rho {rho:g}, {per_arm}/arm)", f"{reduction:.3f}", f"{rho**2:.3f} +- 0.02",
            within(reduction, rho**2, 0.02)),
        Row("CUPED CI width / Welch CI width", f"{width:.3f}", f"{math.sqrt(1 - rho**2):.3f} +- 0.02",
            within(width, math.sqrt(1 - rho**2), 0.02)),
        Row("A/A CUPED Welch, FPR", share(cuped_hits), f"{alpha:.1%} +- 1.5 pts",
            within(np.mean(cuped_hits), alpha, 0.015)),
        Row("A/A plain Welch, FPR", share(welch_hits), f"{alpha:.1%} +- 1.5 pts",
            within(np.mean(welch_hits), alpha, 0.015)),
    ]


def timed(name: str, build: Callable[[], list[Row]], timings: dict[str, float]) -> list[Row]:
    started = time.perf_counter()
    rows = build()
    timings[name] = time.perf_counter() - started
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=1000, help="simulated experiments per check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=int, default=14, help="daily looks of the A/A experiments")
    parser.add_argument("--daily-users", type=int, default=1000, help="users entering per day, both arms together")
    parser.add_argument("--baseline", type=float, default=0.10, help="control conversion rate")
    parser.add_argument("--mde", type=float, default=0.02, help="planned absolute effect")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--rho", type=float, default=0.7, help="CUPED: correlation of metric and pre-period covariate")
    args = parser.parse_args(argv)

    print(f"machine: {describe(numpy=np.__version__, scipy=scipy.__version__, statsmodels=statsmodels.__version__)}")
    per_arm_day = args.daily_users // 2
    print(f"{args.simulations} simulations per check, seed {args.seed}; {args.daily_users} users a day "
          f"({per_arm_day} per arm), baseline {args.baseline:g}, mde {args.mde:g}, alpha {args.alpha:g}, "
          f"A/A over {args.days} days with daily looks")
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    sims = args.simulations
    rows = [
        *timed("A/A", lambda: aa_rows(rng, sims, args.days, per_arm_day, args.baseline, args.mde, args.alpha),
               timings),
        *timed("power", lambda: power_rows(rng, sims, args.daily_users, args.baseline, args.mde, args.alpha),
               timings),
        *timed("SRM", lambda: srm_rows(rng, sims, per_arm_day * 2 * args.days), timings),
        *timed("CUPED", lambda: cuped_rows(rng, sims, per_arm_day * args.days, args.rho, args.alpha), timings),
    ]

    print(f"\n{'check':<50} {'measured':>32}  {'target':<24} verdict")
    for row in rows:
        verdict = "-" if row.passed is None else "PASS" if row.passed else "FAIL"
        print(f"{row.check:<50} {row.measured:>32}  {row.target:<24} {verdict}")
    print("\n" + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0 if all(row.passed is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Regret of the bandit policies against a fixed uniform A/B split, and the honesty of off-policy evaluation.

    .venv/bin/python bench/bandits.py                  # 20 seeds x 20,000 rounds; 200 OPE logs of 10,000 rows
    .venv/bin/python bench/bandits.py --quick          # 5 seeds x 5,000 rounds; 50 OPE logs
    .venv/bin/python bench/bandits.py --seeds 50 --rounds 50000 --seed 1

Two worlds, three home-rail arms each, rewards are clicks:

* bernoulli: fixed click-through rates ``--rates`` (0.05, 0.07, 0.10); no context matters.
* contextual: a user's drama taste s (100 levels in (0, 1), uniform) decides: drama ``0.02 + 0.12 s``, comedy
  ``0.10 - 0.06 s``, thriller 0.06. Comedy is best below s = 0.44, drama above; the context is ``[1, s]``.

(a) Regret: every policy plays the same users and the same reward draws (common random numbers) for ``--rounds``
rounds per seed. Its state is refreshed every ``--batch`` rounds, as the Dagster layer would update it: within a
batch, context-free policies draw from one distribution and LinUCB from its distribution for each user's context.
Regret is the expected clicks lost against the best arm for each user, ``sum(mu_best - mu_chosen)``; the A/B split
draws arms uniformly. Policies: Thompson sampling (10,000 posterior draws), UCB1, epsilon-greedy (0.1), LinUCB
(alpha ``--alpha``; in the bernoulli world its context is the constant [1]), and A/B.

(b) Off-policy evaluation in the contextual world: each log of ``--ope-rows`` rows is collected by an
epsilon-greedy (0.1, floor 0.1, warm-up 20) that is either frozen (its state learned on a separate 2,000 rounds) or
learning as it logs (batch updates, so its propensities change over the log). The target is a frozen LinUCB
(trained on a separate run, no floor), whose true value is exact from the rates. IPS, SNIPS and DR (ridge reward
model on [s]) are judged on bias (|mean error| within 3 standard errors) and 95% interval coverage (>= 90%); the
promotion gate should pass the target against the logger's on-policy value.

Exit status 1 when a target is missed. ``--quick`` is a smoke run: on 50 logs a 3-se bias check is itself noisy
(seeds 0..49 put the learning logger's SNIPS and DR at 3.3 se, the default 200 logs under 3).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

from trending_assets.lib.bandits import UCB1, EpsilonGreedy, LinUCB, Policy, ThompsonSampling  # noqa: E402
from trending_assets.lib.off_policy import doubly_robust, gate, ips, on_policy, snips  # noqa: E402

ARMS = ("drama", "comedy", "thriller")


@dataclass(frozen=True)
class World:
    """Click-through rates per user level (levels x arms) and each level's context for LinUCB."""

    name: str
    rates: np.ndarray
    contexts: np.ndarray

    def draw(self, rng: np.random.Generator, rounds: int) -> tuple[np.ndarray, np.ndarray]:
        """Users' levels and the uniforms that decide their clicks, shared by every policy."""
        return rng.integers(0, len(self.rates), rounds), rng.random((rounds, len(ARMS)))


def bernoulli_world(rates: tuple[float, ...]) -> World:
    return World("bernoulli", np.array([rates]), np.ones((1, 1)))


def contextual_world() -> World:
    s = (np.arange(100) + 0.5) / 100
    rates = np.column_stack([0.02 + 0.12 * s, 0.10 - 0.06 * s, np.full_like(s, 0.06)])
    return World("contextual", rates, np.column_stack([np.ones_like(s), s]))


def play(policy: Policy | None, world: World, levels: np.ndarray, uniforms: np.ndarray, rng: np.random.Generator,
         batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run one policy (None: the uniform A/B split); the arms chosen, clicks and propensities, row by row."""
    rounds = levels.size
    arms, propensities = np.empty(rounds, dtype=int), np.empty(rounds)
    contextual = isinstance(policy, LinUCB)
    for start in range(0, rounds, batch):
        rows = np.arange(start, min(start + batch, rounds))
        if policy is None:
            arms[rows], propensities[rows] = rng.integers(0, len(ARMS), rows.size), 1 / len(ARMS)
        elif contextual:
            for row in rows:
                decision = policy.choose(rng, world.contexts[levels[row]])
                arms[row], propensities[row] = ARMS.index(decision.arm), decision.propensity
        else:  # one distribution for the whole batch: compute it once and draw by inverse CDF
            p = policy.probabilities()
            chosen = np.minimum(np.searchsorted(np.cumsum(p), rng.random(rows.size), side="right"), len(ARMS) - 1)
            arms[rows], propensities[rows] = chosen, p[chosen]
        clicks = uniforms[rows, arms[rows]] < world.rates[levels[rows], arms[rows]]
        if policy is not None:
            for row, click in zip(rows, clicks):
                policy.update(ARMS[arms[row]], float(click), world.contexts[levels[row]] if contextual else None)
    rewards = (uniforms[np.arange(rounds), arms] < world.rates[levels, arms]).astype(float)
    return arms, rewards, propensities


POLICIES: dict[str, Callable[[World, float], Policy | None]] = {
    "thompson": lambda world, alpha: ThompsonSampling(ARMS),
    "ucb1": lambda world, alpha: UCB1(ARMS),
    "epsilon_greedy": lambda world, alpha: EpsilonGreedy(ARMS, epsilon=0.1),
    "linucb": lambda world, alpha: LinUCB(ARMS, dim=world.contexts.shape[1], alpha=alpha),
    "ab_uniform": lambda world, alpha: None,
}


def regret_table(world: World, seeds: int, first_seed: int, rounds: int, batch: int, alpha: float) -> list[str]:
    regrets = {name: [] for name in POLICIES}
    tail_best = {name: [] for name in POLICIES}
    seconds = dict.fromkeys(POLICIES, 0.0)
    tail = slice(rounds - rounds // 10, rounds)
    for seed in range(first_seed, first_seed + seeds):
        levels, uniforms = world.draw(np.random.default_rng([seed, 0]), rounds)
        mu = world.rates[levels]
        for name, make in POLICIES.items():
            started = time.perf_counter()
            arms, _, _ = play(make(world, alpha), world, levels, uniforms, np.random.default_rng([seed, 1]), batch)
            seconds[name] += time.perf_counter() - started
            regrets[name].append(float(np.sum(mu.max(axis=1) - mu[np.arange(rounds), arms])))
            tail_best[name].append(float(np.mean(arms[tail] == mu[tail].argmax(axis=1))))
    ab = np.mean(regrets["ab_uniform"])
    lines = [f"\n{world.name}: {seeds} seeds x {rounds} rounds, state refreshed every {batch} rounds",
             f"{'policy':<16} {'regret (mean +- se)':>22} {'/ A/B':>7} {'best arm, last 10%':>19} {'seconds':>8}"]
    for name, values in regrets.items():
        v = np.array(values)
        lines.append(f"{name:<16} {v.mean():>12.1f} +- {v.std(ddof=1) / np.sqrt(v.size):>6.1f} {v.mean() / ab:>7.2f} "
                     f"{np.mean(tail_best[name]):>19.1%} {seconds[name]:>8.1f}")
    return lines


def logged(world: World, mode: str, run: int, rows: int, batch: int) -> tuple[np.ndarray, ...]:
    """One log by an epsilon-greedy with floor: learning as it logs, or frozen after a separate 2,000-round run."""
    levels, uniforms = world.draw(np.random.default_rng([run, 2]), rows)
    logger = EpsilonGreedy(ARMS, epsilon=0.1, floor=0.1, warmup=20)
    if mode == "frozen":
        warm_levels, warm_uniforms = world.draw(np.random.default_rng([run, 4]), 2000)
        play(logger, world, warm_levels, warm_uniforms, np.random.default_rng([run, 5]), batch)
        batch = rows  # one distribution for the whole log
    return levels, *play(logger, world, levels, uniforms, np.random.default_rng([run, 3]), batch)


def ope_table(world: World, runs: int, first_seed: int, rows: int, batch: int, alpha: float,
              resamples: int) -> tuple[list[str], bool]:
    target_policy = LinUCB(ARMS, dim=2, alpha=alpha)
    levels, uniforms = world.draw(np.random.default_rng([first_seed, 99]), 5000)
    play(target_policy, world, levels, uniforms, np.random.default_rng([first_seed, 98]), batch)
    target = np.array([target_policy.probabilities(x) for x in world.contexts])
    truth = float(np.mean(np.sum(target * world.rates, axis=1)))
    lines = [f"\noff-policy evaluation: {runs} logs x {rows} rows per logger, {resamples} bootstrap resamples",
             f"target: frozen LinUCB (no floor), true value {truth:.5f}",
             f"{'logger':<9} {'estimator':<14} {'bias (+- se)':>20} {'rmse':>8} {'ci width':>9} {'coverage':>9} "
             f"{'ess':>7} {'gate passed':>12}  verdict"]
    all_met = True
    for mode in ("frozen", "learning"):
        estimates: dict[str, list] = {name: [] for name in ("ips", "snips", "doubly_robust", "on_policy")}
        passed = dict.fromkeys(estimates, 0)
        for run in range(first_seed, first_seed + runs):
            levels, a, r, p = logged(world, mode, run, rows, batch)
            pi, s = target[levels], world.contexts[levels, 1:]
            live = on_policy(r, n_resamples=resamples, seed=run)
            for estimate in (live, ips(a, r, p, pi, n_resamples=resamples, seed=run),
                             snips(a, r, p, pi, n_resamples=resamples, seed=run),
                             doubly_robust(a, r, p, pi, contexts=s, n_resamples=resamples, seed=run)):
                estimates[estimate.estimator].append(estimate)
                passed[estimate.estimator] += gate(estimate, live).passed
        for name, found in estimates.items():
            values = np.array([e.value for e in found])
            se = values.std(ddof=1) / np.sqrt(runs)
            bias = values.mean() - truth
            coverage = np.mean([e.ci_low <= truth <= e.ci_high for e in found])
            width = np.mean([e.ci_high - e.ci_low for e in found])
            ess = np.mean([e.effective_sample_size for e in found])
            # on_policy is the logger's own value, not an estimate of the target's: its "bias" is the gap.
            met = None if name == "on_policy" else bool(abs(bias) <= 3 * se and coverage >= 0.90)
            all_met &= met is not False
            lines.append(f"{mode:<9} {name:<14} {bias:>+10.5f} +- {se:.5f} "
                         f"{np.sqrt(np.mean((values - truth) ** 2)):>8.5f} {width:>9.5f} {coverage:>9.1%} {ess:>7.0f} "
                         f"{passed[name] / runs:>12.1%}  {'-' if met is None else 'PASS' if met else 'FAIL'}")
    lines.append("targets: |bias| <= 3 se and coverage >= 90% of the target's true value. on_policy is the logger's "
                 "mean reward:\nits bias is how far a naive reading of the logs is from the target. gate passed: "
                 "share of logs on which\nthe target (truly better than the logger) is promoted over the logger's "
                 "on-policy value.")
    return lines, all_met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 seeds x 5,000 rounds, 50 OPE logs, 200 resamples")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--batch", type=int, default=100, help="rounds between state refreshes")
    parser.add_argument("--rates", type=lambda text: tuple(float(v) for v in text.split(",")),
                        default=(0.05, 0.07, 0.10), help="bernoulli world's click-through rates, one per arm (3)")
    parser.add_argument("--alpha", type=float, default=0.3, help="LinUCB's exploration width")
    parser.add_argument("--ope-runs", type=int, default=200)
    parser.add_argument("--ope-rows", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.rounds, args.ope_runs, args.resamples = 5, 5000, 50, 200
    if len(args.rates) != len(ARMS):
        parser.error(f"--rates needs {len(ARMS)} rates, one per arm")

    print(f"machine: {describe(numpy=np.__version__, scipy=scipy.__version__)}")
    print(f"command: .venv/bin/python bench/bandits.py {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip())
    print(f"seeds {args.seed}..{args.seed + args.seeds - 1}; rates {args.rates}; LinUCB alpha {args.alpha}")
    started = time.perf_counter()
    lines = regret_table(bernoulli_world(args.rates), args.seeds, args.seed, args.rounds, args.batch, args.alpha)
    lines += regret_table(contextual_world(), args.seeds, args.seed, args.rounds, args.batch, args.alpha)
    print("\n".join(lines), flush=True)
    ope_started = time.perf_counter()
    ope_lines, met = ope_table(contextual_world(), args.ope_runs, args.seed, args.ope_rows, args.batch, args.alpha,
                               args.resamples)
    print("\n".join(ope_lines))
    print(f"\nregret {ope_started - started:.1f} s, off-policy evaluation {time.perf_counter() - ope_started:.1f} s, "
          f"total {time.perf_counter() - started:.1f} s")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

"""Drift report benchmark: ``feature_drift`` on a 100k-row reference against a 100k-row current, 20 features.

    .venv/bin/python bench/drift.py                     # 100k vs 100k, 12 numeric + 8 categorical, best of 3
    .venv/bin/python bench/drift.py --rows 10000 --repeats 1

Synthetic data (numpy, seed 0): numeric features are normal, lognormal, uniform and integer counts; categorical
ones have 5 to 40 categories with Zipf-like shares. Half of the features are shifted in the current frame (means
moved by 0.3 standard deviations or scaled, category shares tilted), the other half are drawn from the reference's
distribution, so the expected verdict is drift for exactly the ``*_shifted`` features and dataset drift at share
0.5. At this size the tests are the large-sample ones (normalized Wasserstein, Jensen-Shannon). Timing is wall
seconds of the whole ``feature_drift`` call, best of ``--repeats``; rows/s counts reference plus current rows.

Evidently is compared only when ``import evidently`` already works here; nothing is installed by this script.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

from trending_assets.lib.drift import feature_drift  # noqa: E402

NUMERIC, CATEGORICAL = 12, 8


def frames(rows: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame, list[str], list[str]]:
    """Reference and current frames; features whose name ends in ``_shifted`` differ between them."""
    rng = np.random.default_rng(seed)
    reference, current, numeric, categorical = {}, {}, [], []
    makers = (
        lambda n, shift: rng.normal(0.3 * shift, 1.0, n),
        lambda n, shift: rng.lognormal(2.0 + 0.3 * shift, 0.8, n),
        lambda n, shift: rng.uniform(0.0, 1.0 + 0.3 * shift, n),
        lambda n, shift: rng.poisson(20 * (1 + 0.3 * shift), n).astype(float),
    )
    for i in range(NUMERIC):
        shifted = i % 2 == 1
        name = f"num_{i:02d}" + ("_shifted" if shifted else "")
        make = makers[(i // 2) % len(makers)]
        reference[name], current[name] = make(rows, 0), make(rows, int(shifted))
        numeric.append(name)
    for i in range(CATEGORICAL):
        shifted = i % 2 == 1
        name = f"cat_{i:02d}" + ("_shifted" if shifted else "")
        k = 5 + 5 * i
        labels = np.array([f"c{j}" for j in range(k)])
        shares = 1.0 / np.arange(1, k + 1)
        tilted = shares * np.linspace(0.4, 1.6, k) if shifted else shares
        reference[name] = labels[rng.choice(k, rows, p=shares / shares.sum())]
        current[name] = labels[rng.choice(k, rows, p=tilted / tilted.sum())]
        categorical.append(name)
    return pl.DataFrame(reference), pl.DataFrame(current), numeric, categorical


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in each of reference and current")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    print(f"machine: {describe(polars=pl.__version__)}")
    reference, current, numeric, categorical = frames(args.rows)
    print(f"reference {reference.height:,} rows, current {current.height:,} rows, "
          f"{len(numeric)} numeric + {len(categorical)} categorical features, half shifted")

    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        result = feature_drift(reference, current, numeric, categorical)
        times.append(time.perf_counter() - started)
    best = min(times)
    rows = reference.height + current.height
    print(f"\nfeature_drift: best {best:.3f} s of {args.repeats} ({', '.join(f'{t:.3f}' for t in times)}), "
          f"{rows / best:,.0f} rows/s, {rows * len(numeric + categorical) / best:,.0f} values/s")

    print(f"\n{'feature':<18} {'test':<20} {'statistic':>10} {'threshold':>10} {'psi':>8} {'drifted':>8} "
          f"{'expected':>9}")
    wrong = 0
    for f in result.features:
        expected = f.feature.endswith("_shifted")
        wrong += f.drifted != expected
        print(f"{f.feature:<18} {f.test:<20} {f.statistic:>10.4f} {f.threshold:>10.2f} {f.psi:>8.4f} "
              f"{str(f.drifted):>8} {str(expected):>9}")
    print(f"\ndataset drift: {result.dataset_drift} ({result.n_drifted}/{result.n_judged} features drifted, "
          f"share {result.share_drifted:.2f}, threshold {result.threshold_share}); "
          f"{len(result.features) - wrong}/{len(result.features)} feature verdicts as expected")

    try:
        import evidently  # noqa: F401
    except ImportError:
        print("\nevidently not installed here; our figures only")
    else:
        print(f"\nevidently {evidently.__version__} is importable, but this script does not run it yet; "
              "our figures only")
    return 0 if wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

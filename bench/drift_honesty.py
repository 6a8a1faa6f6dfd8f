"""Statistical honesty of the drift alarm on the real simulator: false alarms on ``stable``, detection on drift.

    .venv/bin/python bench/drift_honesty.py                                  # 200 stable seeds, 50 per drift scenario
    .venv/bin/python bench/drift_honesty.py --stable-seeds 40 --drift-seeds 10
    .venv/bin/python bench/drift_honesty.py --first-seed 1000                # seeds 1000.. instead of 0..

For each seed a fresh temporary home gets ``--reference-days`` (7) days before the drift start plus
``--current-days`` (3) days from it (``--movies-per-day`` 60, ``--users`` 10; the drift start is read back from
``ground_truth/scenario.json``). Rows are each day's new releases as scraped on their release day (the movie id
carries its release date), so reference and current rows are the same kind of row: re-scrapes, whose popularity
has decayed and whose votes have grown, are left out. Reference = the 7 days before the drift start (420 movies);
current = one day's releases (60 movies), for the drift-start day and each of the next two.

Four signals are computed on every reference/current pair and reported separately, so it is clear which one saw
what:

* dataset: ``movie_drift`` (5 numeric, 2 categorical and the title+overview text feature) with share 0.5;
* text: that report's title+overview feature alone (domain-classifier AUC), part of the dataset verdict;
* vocabulary: ``movie_vocabulary_drift``, words of title+overview more frequent in current (per-word Fisher tests,
  Benjamini-Hochberg, at least 2 words), a verdict of its own outside the dataset share;
* label: ``distribution_drift`` of the scraped genre mix (``genre_counts``), the label-drift monitor.

The alarm the platform raises is "any" = dataset OR vocabulary OR label, and the targets are judged on it. The
simulator's ``genre_shift`` changes only the genre mix and ``vocabulary_drift`` only the science-fiction words, so
neither moves the tabular columns and a share-0.5 dataset verdict cannot fire: label drift sees the genre mix, the
vocabulary test the new words (about 5 science-fiction movies a day, each new word in 3 or 4 of them, which the
domain classifier's AUC barely notices).

False alarms are counted two ways on ``stable``: per pair (reference against the drift-start day only; the issue's
"reference/current pairs", target <= 5%) and per procedure (any alarm in the three daily windows, which is what the
"within 2 days" detection rule looks at; reported, no target). Detection is "any alarm in the three daily windows"
(target >= 90%). The vocabulary test's settings were chosen on seeds 1000-1199 (``--first-seed 1000``), so the
default seeds 0.. are a fresh check of them. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

from trending_assets.lib.drift import distribution_drift, genre_counts  # noqa: E402
from trending_assets.lib.drift_features import TEXT_FEATURE, movie_drift, movie_vocabulary_drift  # noqa: E402
from trending_assets.lib.home import TrendingHome  # noqa: E402
from trending_assets.lib.simulator import simulate  # noqa: E402
from trending_assets.lib.simulator.writer import read_world_record  # noqa: E402

START = date(2026, 1, 1)
SIGNALS = ("dataset", "text", "vocabulary", "label")
# The platform's drift alarm: which signals it ORs together.
ALARM = ("dataset", "vocabulary", "label")
FALSE_ALARM_TARGET = 0.05
DETECTION_TARGET = 0.90


@dataclass(frozen=True)
class SeedResult:
    """One seed's verdicts: ``alarms[signal]`` holds one bool per daily window, drift-start day first."""

    scenario: str
    seed: int
    alarms: dict[str, tuple[bool, ...]]
    drifted_features: tuple[tuple[str, ...], ...]


def new_releases(home: TrendingHome) -> pl.DataFrame:
    """Each day's new movies as scraped on their release day, with ``day`` and ``release_year``."""
    frames = []
    for path in sorted(home.landing_dir("movies").glob("movies_*.jsonl")):
        day = date.fromisoformat(path.stem.removeprefix("movies_"))
        prefix = f"m{day:%Y%m%d}-"
        frame = pl.read_ndjson(path).filter(pl.col("movie_id").str.starts_with(prefix))
        first = frame.unique("movie_id", keep="first", maintain_order=True)
        frames.append(first.with_columns(pl.lit(day).alias("day")))
    return pl.concat(frames, how="diagonal_relaxed").with_columns(
        pl.col("release_date").str.slice(0, 4).cast(pl.Int32, strict=False).alias("release_year")
    )


def run_seed(
    scenario: str, seed: int, reference_days: int = 7, current_days: int = 3, movies_per_day: int = 60,
    users: int = 10,
) -> SeedResult:
    """Simulate one world into a fresh temporary home and judge each daily window after the drift start."""
    with tempfile.TemporaryDirectory(prefix="drift-honesty-") as root:
        home = TrendingHome(Path(root))
        simulate(home, START, reference_days + current_days, scenario=scenario, seed=seed,
                 movies_per_day=movies_per_day, users=users, drift_start=START + timedelta(days=reference_days))
        drift_start = date.fromisoformat(read_world_record(home)["drift_start"])
        rows = new_releases(home)
    reference = rows.filter(pl.col("day") < drift_start, pl.col("day") >= drift_start - timedelta(reference_days))
    ref_genres = genre_counts(reference["genres"])
    alarms = {signal: [] for signal in SIGNALS}
    drifted_features = []
    for offset in range(current_days):
        current = rows.filter(pl.col("day") == drift_start + timedelta(days=offset))
        report = movie_drift(reference, current)
        text = next(f for f in report.features if f.feature == TEXT_FEATURE)
        vocabulary = movie_vocabulary_drift(reference, current)
        label = distribution_drift(ref_genres, genre_counts(current["genres"]), "genres")
        alarms["dataset"].append(report.dataset_drift)
        alarms["text"].append(bool(text.drifted))
        alarms["vocabulary"].append(bool(vocabulary.drifted))
        alarms["label"].append(bool(label.drifted))
        drifted_features.append(tuple(f.feature for f in report.features if f.drifted))
    return SeedResult(scenario, seed, {k: tuple(v) for k, v in alarms.items()}, tuple(drifted_features))


def rate(results: list[SeedResult], hit) -> tuple[int, int]:
    """How many seeds satisfy ``hit`` and how many there were."""
    return sum(bool(hit(r)) for r in results), len(results)


def fmt(count: tuple[int, int]) -> str:
    hits, total = count
    return f"{hits:>3}/{total:<3} = {hits / total:6.1%}" if total else "  n/a"


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def any_of(*signals):
    return lambda r: any(any(r.alarms[s]) for s in signals)


def report(results: dict[str, list[SeedResult]]) -> bool:
    """Print the rates per signal and the targets' verdicts (on the "any" alarm); True when every target passed."""
    stable = results.get("stable", [])
    print(f"\n{'signal':<18} {'stable: false alarms, 1 pair':>30} {'stable: any of 3 days':>24} "
          f"{'genre_shift: detected <= 2 d':>30} {'vocabulary_drift: detected <= 2 d':>34}")
    rules = {**{signal: (signal,) for signal in SIGNALS}, "any": ALARM}
    for name, signals in rules.items():
        first_day = rate(stable, lambda r, s=signals: any(r.alarms[x][0] for x in s))
        print(f"{name:<18} {fmt(first_day):>30} {fmt(rate(stable, any_of(*signals))):>24} "
              f"{fmt(rate(results.get('genre_shift', []), any_of(*signals))):>30} "
              f"{fmt(rate(results.get('vocabulary_drift', []), any_of(*signals))):>34}")

    passed = True
    rule = " OR ".join(ALARM)
    print(f"\ntargets, on the alarm any = {rule}:")
    if stable:
        hits, total = rate(stable, lambda r: any(r.alarms[s][0] for s in ALARM))
        ok = hits / total <= FALSE_ALARM_TARGET
        passed &= ok
        print(f"  {verdict(ok)} stable, false alarms per pair {fmt((hits, total))} (target <= 5%)")
        print(f"       (any of the 3 daily windows: {fmt(rate(stable, any_of(*ALARM)))}, no target)")
    for scenario in ("genre_shift", "vocabulary_drift"):
        seeds = results.get(scenario, [])
        if not seeds:
            continue
        hits, total = rate(seeds, any_of(*ALARM))
        ok = hits / total >= DETECTION_TARGET
        passed &= ok
        windows = [any(r.alarms[s][day] for s in ALARM) for r in seeds for day in range(len(r.alarms["label"]))]
        print(f"  {verdict(ok)} {scenario}, detected within 2 days {fmt((hits, total))} (target >= 90%)")
        print(f"       (each daily window alone: {fmt((sum(windows), len(windows)))})")
    return passed


def feature_table(results: dict[str, list[SeedResult]]) -> None:
    """How often each feature drifted on the drift-start day, per scenario: what the dataset verdict is made of."""
    print("\nshare of seeds where each feature drifted on the drift-start day (p < 0.05 / AUC cut-off):")
    names = ("release_year", "popularity", "vote_average", "vote_count", "runtime_minutes", "source", "language",
             TEXT_FEATURE)
    print(f"{'scenario':<18}" + "".join(f"{n[:12]:>13}" for n in names))
    for scenario, seeds in results.items():
        shares = [sum(n in r.drifted_features[0] for r in seeds) / len(seeds) for n in names]
        print(f"{scenario:<18}" + "".join(f"{s:>13.0%}" for s in shares))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stable-seeds", type=int, default=200)
    parser.add_argument("--drift-seeds", type=int, default=50, help="seeds for each drift scenario")
    parser.add_argument("--first-seed", type=int, default=0, help="every scenario's seeds start here")
    parser.add_argument("--reference-days", type=int, default=7)
    parser.add_argument("--current-days", type=int, default=3, help="daily windows from the drift start")
    parser.add_argument("--movies-per-day", type=int, default=60)
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args(argv)

    print(f"machine: {describe(polars=pl.__version__)}")
    print(f"{args.stable_seeds} stable seeds, {args.drift_seeds} seeds each of genre_shift and vocabulary_drift "
          f"(from seed {args.first_seed}); "
          f"reference {args.reference_days} days x {args.movies_per_day} new movies, current 1 day, "
          f"{args.current_days} daily windows from the drift start")
    started = time.perf_counter()
    results: dict[str, list[SeedResult]] = {}
    for scenario, count in (("stable", args.stable_seeds), ("genre_shift", args.drift_seeds),
                            ("vocabulary_drift", args.drift_seeds)):
        t = time.perf_counter()
        results[scenario] = [run_seed(scenario, seed, args.reference_days, args.current_days, args.movies_per_day,
                                      args.users) for seed in range(args.first_seed, args.first_seed + count)]
        print(f"  {scenario}: {count} seeds in {time.perf_counter() - t:.1f} s", flush=True)
    feature_table(results)
    passed = report(results)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

"""Drift report benchmark: ``feature_drift`` on a 100k-row reference against a 100k-row current, 20 features.

    .venv/bin/python bench/drift.py                     # 100k vs 100k, 12 numeric + 8 categorical, best of 3
    .venv/bin/python bench/drift.py --rows 10000 --repeats 1
    .venv/bin/python bench/drift.py --evidently-python /tmp/evidently-venv/bin/python   # side by side

Synthetic data (numpy, seed 0): numeric features are normal, lognormal, uniform and integer counts; categorical
ones have 5 to 40 categories with Zipf-like shares. Half of the features are shifted in the current frame (means
moved by 0.3 standard deviations or scaled, category shares tilted), the other half are drawn from the reference's
distribution, so the expected verdict is drift for exactly the ``*_shifted`` features and dataset drift at share
0.5. At this size the tests are the large-sample ones (normalized Wasserstein, Jensen-Shannon). Timing is wall
seconds of the whole ``feature_drift`` call, best of ``--repeats``; rows/s counts reference plus current rows.

Evidently is never installed by this script and never imported into this venv for the comparison. With
``--evidently-python PATH`` (the python of a throwaway venv holding ``evidently``, e.g. one made by
``python3 -m venv /tmp/evidently-venv && /tmp/evidently-venv/bin/pip install evidently "pandas<3"``: evidently
0.6.7 and 0.7.23 do not import under pandas 3) the very frames generated here are written to Parquet (CSV when that
venv's pandas has no Parquet engine) in a temp dir, and ``EVIDENTLY_SIDE`` below runs there: it loads them with pandas
(not timed), declares the numeric and categorical columns (``DataDefinition``; ``ColumnMapping`` before 0.7) and
runs Evidently's ``DataDriftPreset`` with default methods and thresholds, best of ``--repeats``, timing the
dataset wrapping plus ``Report.run``. Its per-column test, score and verdict and its dataset verdict are printed
beside ours, with the agreement and the time ratio from the same run. Without the flag only our figures are shown.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

from trending_assets.lib.drift import DatasetDrift, feature_drift  # noqa: E402

NUMERIC, CATEGORICAL = 12, 8
EVIDENTLY_TIMEOUT_S = 1800

# Run by --evidently-python as ``python SCRIPT SPEC.json``; prints one JSON object on stdout. It only uses what is
# in that venv (pandas, evidently); messages from evidently go to stderr and are shown only when it fails.
EVIDENTLY_SIDE = r'''
import json, sys, time, traceback

def probe():
    import pandas as pd
    engine = None
    for name in ("pyarrow", "fastparquet"):
        try:
            __import__(name)
            engine = name
            break
        except ImportError:
            pass
    return {"pandas": pd.__version__, "parquet_engine": engine}

def load(spec):
    import pandas as pd
    read = pd.read_parquet if spec["format"] == "parquet" else pd.read_csv
    frames = [read(spec[side]) for side in ("reference", "current")]
    for frame in frames:  # CSV would read "c1"-style labels as str anyway; make the dtype explicit on both paths
        for name in spec["categorical"]:
            frame[name] = frame[name].astype(str)
    return frames

def best_of(run, repeats):
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return result, times

def modern(spec, reference, current):
    """evidently >= 0.7: Report([DataDriftPreset()]) on Datasets with a DataDefinition."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=spec["numeric"], categorical_columns=spec["categorical"])

    def run():
        cur = Dataset.from_pandas(current, data_definition=definition)
        ref = Dataset.from_pandas(reference, data_definition=definition)
        # include_tests=True only adds Evidently's own pass/fail per column and for the dataset (its verdicts).
        return Report([DataDriftPreset()], include_tests=True).run(cur, ref), cur

    (snapshot, cur), times = best_of(run, spec["repeats"])
    out = snapshot.dict()
    by_id, columns, share, drift_share = {}, {}, None, 0.5
    for metric in out["metrics"]:
        config = metric["config"]
        kind = config.get("type", "")
        if kind.endswith(":ValueDrift"):
            name = config["column"]
            by_id[metric["id"]] = name
            columns[name] = {"test": config.get("method"), "score": float(metric["value"]),
                             "threshold": config.get("threshold"), "drifted": None,
                             "type": str(getattr(cur.data_definition.get_column_type(name), "value", ""))}
        elif kind.endswith(":DriftedColumnsCount"):
            share, drift_share = float(metric["value"]["share"]), float(config.get("drift_share", 0.5))
            by_id[metric["id"]] = "__dataset__"
    dataset = None
    for test in out.get("tests", []):
        target = by_id.get(test["metric_config"]["metric_id"])
        if target == "__dataset__":
            dataset = test["status"] == "FAIL"  # the test is "share of drifted columns < drift_share"
        elif target is not None:
            columns[target]["drifted"] = test["status"] == "FAIL"
    if dataset is None and share is not None:
        dataset = share >= drift_share
    return {"api": "Report + DataDriftPreset (evidently.presets), DataDefinition", "times": times,
            "columns": columns, "dataset_drift": dataset, "share": share, "drift_share": drift_share,
            "n_drifted": sum(bool(c["drifted"]) for c in columns.values())}

def legacy(spec, reference, current):
    """evidently 0.4 - 0.6: Report(metrics=[DataDriftPreset()]) with a ColumnMapping."""
    try:
        from evidently.report import Report
        from evidently.metric_preset import DataDriftPreset
    except ImportError:
        from evidently.legacy.report import Report
        from evidently.legacy.metric_preset import DataDriftPreset
    try:
        from evidently import ColumnMapping
    except ImportError:
        from evidently.pipeline.column_mapping import ColumnMapping

    mapping = ColumnMapping(numerical_features=spec["numeric"], categorical_features=spec["categorical"],
                            target=None, prediction=None)

    def run():
        report = Report(metrics=[DataDriftPreset()])
        report.run(reference_data=reference, current_data=current, column_mapping=mapping)
        return report

    report, times = best_of(run, spec["repeats"])
    columns, dataset = {}, {}
    for metric in report.as_dict()["metrics"]:
        result = metric["result"]
        if "drift_by_columns" in result:
            for name, c in result["drift_by_columns"].items():
                columns[name] = {"test": c.get("stattest_name"), "score": float(c["drift_score"]),
                                 "threshold": c.get("stattest_threshold"), "drifted": bool(c["drift_detected"]),
                                 "type": c.get("column_type", "")}
        if "dataset_drift" in result and "number_of_drifted_columns" in result:
            dataset = result
    return {"api": "Report + DataDriftPreset (evidently.metric_preset), ColumnMapping", "times": times,
            "columns": columns, "dataset_drift": dataset.get("dataset_drift"),
            "share": dataset.get("share_of_drifted_columns"), "drift_share": dataset.get("drift_share", 0.5),
            "n_drifted": dataset.get("number_of_drifted_columns")}

def main():
    if sys.argv[1] == "--probe":
        print(json.dumps(probe()))
        return 0
    spec = json.loads(open(sys.argv[1]).read())
    try:
        import evidently
        import pandas as pd
        reference, current = load(spec)
        try:
            from evidently import DataDefinition  # noqa: F401  (0.7+)
            result = modern(spec, reference, current)
        except ImportError:
            result = legacy(spec, reference, current)
        result.update(evidently=evidently.__version__, pandas=pd.__version__)
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}))
        return 1
    print(json.dumps(result))
    return 0

sys.exit(main())
'''


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


def run_evidently(python: str, reference: pl.DataFrame, current: pl.DataFrame, numeric: list[str],
                  categorical: list[str], repeats: int) -> dict:
    """Evidently's figures from another venv's ``python`` on these very frames; ``{"error": ...}`` on failure."""
    env = {**os.environ, "DO_NOT_TRACK": "1"}  # no telemetry attempt from evidently on this offline machine
    with tempfile.TemporaryDirectory(prefix="drift-evidently-") as tmp:
        script = Path(tmp) / "evidently_side.py"
        script.write_text(EVIDENTLY_SIDE)

        def call(*args: str) -> dict:
            try:
                done = subprocess.run([python, str(script), *args], capture_output=True, text=True, env=env,
                                      timeout=EVIDENTLY_TIMEOUT_S, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return {"error": f"{type(exc).__name__}: {exc}"}
            lines = done.stdout.strip().splitlines()
            try:
                answer = json.loads(lines[-1]) if lines else {}
            except json.JSONDecodeError:
                answer = {}
            if done.returncode != 0 or not answer:
                answer.setdefault("error", f"exit {done.returncode}")
                answer["stderr"] = done.stderr[-3000:]
            return answer

        probe = call("--probe")
        if "error" in probe:
            return probe
        fmt = "parquet" if probe.get("parquet_engine") else "csv"
        paths = {}
        for side, frame in (("reference", reference), ("current", current)):
            paths[side] = str(Path(tmp) / f"{side}.{fmt}")
            frame.write_parquet(paths[side]) if fmt == "parquet" else frame.write_csv(paths[side])
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({**paths, "format": fmt, "numeric": numeric, "categorical": categorical,
                                    "repeats": repeats}))
        result = call(str(spec))
        result["format"] = fmt
        return result


def print_side_by_side(ours: DatasetDrift, ours_times: list[float], theirs: dict) -> bool:
    """The per-feature table, agreement and both times; True when every verdict agrees."""
    best, their_best = min(ours_times), min(theirs["times"])
    print(f"\nevidently {theirs['evidently']} (pandas {theirs['pandas']}, {theirs['api']}, data via "
          f"{theirs['format']}): best {their_best:.3f} s of {len(theirs['times'])} "
          f"({', '.join(f'{t:.3f}' for t in theirs['times'])})")
    print(f"time: ours {best:.3f} s, evidently {their_best:.3f} s, evidently/ours = {their_best / best:.2f}x "
          f"(same run, same frames, file loading excluded)")
    print(f"\n{'feature':<18} | {'our test':<18} {'statistic':>9} {'drift':>5} | {'evidently test':<29} "
          f"{'type':<4} {'score':>7} {'thr':>5} {'drift':>5} | agree")
    agree, missing = 0, 0
    for f in ours.features:
        c = theirs["columns"].get(f.feature)
        if c is None:
            missing += 1
            print(f"{f.feature:<18} | {f.test:<18} {f.statistic:>9.4f} {str(f.drifted):>5} | not in evidently's "
                  "result")
            continue
        same = c["drifted"] == f.drifted
        agree += same
        threshold = "" if c["threshold"] is None else f"{c['threshold']:.2f}"
        print(f"{f.feature:<18} | {f.test:<18} {f.statistic:>9.4f} {str(f.drifted):>5} | {c['test']:<29} "
              f"{c['type']:<4} {c['score']:>7.4f} {threshold:>5} {str(c['drifted']):>5} | "
              f"{'yes' if same else 'NO'}")
    dataset_same = theirs["dataset_drift"] == ours.dataset_drift
    print(f"\nfeature verdicts agree: {agree}/{len(ours.features)}"
          + (f" ({missing} features missing from evidently's result)" if missing else ""))
    share = "?" if theirs["share"] is None else f"{theirs['share']:.2f}"
    print(f"dataset drift: ours {ours.dataset_drift} (share {ours.share_drifted:.2f}), evidently "
          f"{theirs['dataset_drift']} ({theirs['n_drifted']} drifted, share {share}, threshold "
          f"{theirs['drift_share']}); {'agree' if dataset_same else 'DISAGREE'}")
    return agree == len(ours.features) and dataset_same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in each of reference and current")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--evidently-python", metavar="PATH",
                        help="python of a separate venv with evidently installed: run its DataDriftPreset on the "
                             "same frames and print its verdicts and time beside ours")
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

    if args.evidently_python:
        theirs = run_evidently(args.evidently_python, reference, current, numeric, categorical, args.repeats)
        if "error" in theirs:
            print(f"\nevidently side by side failed with {args.evidently_python}: {theirs['error']}")
            for extra in ("traceback", "stderr"):
                if theirs.get(extra):
                    print(theirs[extra].rstrip())
            print("our figures only")
            return 2
        print_side_by_side(result, times, theirs)
        return 0 if wrong == 0 else 1

    try:
        import evidently  # noqa: F401
    except ImportError:
        print("\nevidently not installed here; our figures only "
              "(--evidently-python PATH compares with evidently from another venv)")
    else:
        print(f"\nevidently {evidently.__version__} is importable here; pass --evidently-python {sys.executable} "
              "for the side by side; our figures only")
    return 0 if wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

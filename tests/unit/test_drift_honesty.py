"""A small version of ``bench/drift_honesty.py``: false alarms on ``stable``, detection on drift, real simulator.

Sized for under a minute on two cores (the text feature's cross-validated classifier is most of the time, about a
second per reference/current pair): 20 stable and 5 ``genre_shift`` seeds, each judging only the drift-start day
(for detection that is stricter than the bench's "within 2 days", which judges three daily windows). 60 new movies
a day, a 7-day reference, as in the bench. ``vocabulary_drift`` is not detected yet (the bench prints FAIL and why;
issue 4 is open on it), so it has no test that would pass here.
"""

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "drift_honesty.py"
spec = importlib.util.spec_from_file_location("drift_honesty", BENCH)
honesty = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = honesty
spec.loader.exec_module(honesty)


def seeds(scenario, count, current_days):
    return [honesty.run_seed(scenario, seed, current_days=current_days) for seed in range(count)]


def detected(result, *signals):
    return any(any(result.alarms[signal]) for signal in signals)


def test_stable_dataset_drift_false_alarms_at_most_2_of_20():
    results = seeds("stable", 20, current_days=1)
    alarms = [r.seed for r in results if r.alarms["dataset"][0]]
    assert len(alarms) <= 2, f"dataset drift on stable seeds {alarms}"


def test_genre_shift_detected_by_dataset_or_label_drift():
    # The shift changes only the genre mix: label drift (genre_counts) sees it, the share-0.5 dataset verdict does
    # not (only the text feature moves), so the target is met by "dataset drift OR label drift".
    results = seeds("genre_shift", 5, current_days=1)
    assert sum(detected(r, "dataset", "label") for r in results) >= 4
    assert sum(detected(r, "label") for r in results) >= 4

"""Typed settings of the monitors, with defaults that suit one laptop and the simulator's ~120 movies a day."""

import dagster as dg


class DriftConfig(dg.Config):
    current_days: int = 2  # the current data: movies first seen on the newest days
    share: float = 0.5  # dataset drift when at least this share of judged features drift (Evidently's default)
    min_rows: int = 30  # fewer movies on either side: "insufficient data", never an alarm
    embedding: bool = True  # MiniLM embedding drift (a few seconds on CPU)
    # sample the reference down (seeded) for every signal; 1000 keeps the tabular tests on KS / chi-squared, whose
    # p-values account for a small current sample (None: judge a large reference by distance, as Evidently does)
    max_reference_rows: int | None = 1000
    seed: int = 0


class PerformanceConfig(dg.Config):
    days: int = 14  # recompute this many days of feedback (late events change a day's numbers)
    recent_days: int = 3  # the check judges the champion on these newest days, pooled
    f1_floor: float = 0.6  # online micro F1 on corrections below this fails the check
    max_estimated_drop: float = 0.1  # estimated (CBPE) micro F1 this far below its static-test reference fails it
    min_n: int = 20  # fewer corrections (or movies, for the estimate): insufficient data, never an alarm

"""The experiment analysis on synthetic traffic whose behaviour is known: per-user metrics, the sequential and
fixed-horizon tests, guardrails, SRM, daily looks, CUPED, and the shadow report.

``traffic`` draws per-event logs in the shape ``user_days`` reads: every user comes back each day, gets one ok
exposure (plus an error exposure with the arm's error rate) and ``impressions`` impressions of catalog movies shown
with their true genres, clicks each with the user's click probability (the arm's rate times a personal propensity),
watches what they click, and gives a thumbs down on a click with the arm's thumbs-down probability.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from trending_assets.lib import experiment_analysis as ea
from trending_assets.lib.experiment_analysis import PRIMARY, AnalysisConfig, analyse, shadow_report, user_days

FIRST_DAY = date(2026, 3, 2)
GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance")
LABELED, UNLABELED = 30, 10  # catalog movies with and without labels


@dataclass(frozen=True)
class Arm:
    users: int = 400
    click: float = 0.10  # per impression, for a user of average propensity
    thumbs_down: float = 0.10  # per click
    error: float = 0.0  # chance of an extra failed request per user and day
    latency_ms: float = 10.0


def catalog() -> tuple[list[list[str]], pl.DataFrame]:
    """Each movie's true genres, and the labels frame (labeled movies only)."""
    rng = np.random.default_rng(0)
    genres = [sorted(rng.choice(GENRES, size=rng.integers(1, 3), replace=False).tolist())
              for _ in range(LABELED + UNLABELED)]
    labels = pl.DataFrame({"movie_id": [f"m{i:03d}" for i in range(LABELED)], "genres": genres[:LABELED]},
                          schema={"movie_id": pl.String, "genres": pl.List(pl.String)})
    return genres, labels


GENRES_OF, LABELS = catalog()
EVENT_SCHEMA = {"user_id": pl.String, "variant": pl.String, "event_type": pl.String, "movie_id": pl.String,
                "value": pl.Float64, "shown": pl.List(pl.String), "status": pl.String, "day": pl.Date}


def traffic(seed: int, arms: dict[str, Arm], days: int = 1, impressions: int = 20, spread: float = 0.0,
            day_click: dict[str, list[float]] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(events, pre-period) for the arms. ``spread``: users' propensities are uniform in [1 - spread, 1 + spread];
    the pre-period click rate is 0.1 x propensity plus a little noise. ``day_click`` overrides an arm's click
    rate per day."""
    rng = np.random.default_rng(seed)
    events, pre = [], []
    for variant, arm in arms.items():
        users = np.array([f"{variant}-{i:05d}" for i in range(arm.users)])
        propensity = rng.uniform(1 - spread, 1 + spread, size=arm.users)
        pre.append(pl.DataFrame({"user_id": users,
                                 "pre_click_rate": 0.1 * propensity + rng.normal(0, 0.002, size=arm.users)}))
        for day in range(days):
            click = (day_click or {}).get(variant, [arm.click] * days)[day]
            when = FIRST_DAY + timedelta(days=day)
            user = np.repeat(np.arange(arm.users), impressions)
            movie = rng.integers(0, LABELED + UNLABELED, size=user.size)
            clicked = rng.random(user.size) < np.clip(click * propensity[user], 0, 1)
            down = clicked & (rng.random(user.size) < arm.thumbs_down)
            failed = rng.random(arm.users) < arm.error

            def rows(kind: str, mask: np.ndarray, value=None, shown: bool = False) -> pl.DataFrame:
                return pl.DataFrame({
                    "user_id": users[user[mask]], "variant": variant, "event_type": kind,
                    "movie_id": [f"m{m:03d}" for m in movie[mask]],
                    "value": value if value is not None else [None] * int(mask.sum()),
                    "shown": [GENRES_OF[m] for m in movie[mask]] if shown else [None] * int(mask.sum()),
                    "status": None, "day": when}, schema=EVENT_SCHEMA)

            exposures = pl.DataFrame({
                "user_id": np.concatenate([users, users[failed]]), "variant": variant, "event_type": "exposure",
                "movie_id": None, "value": None, "shown": None,
                "status": ["ok"] * arm.users + ["error"] * int(failed.sum()), "day": when}, schema=EVENT_SCHEMA)
            everyone = np.ones(user.size, dtype=bool)
            events += [exposures, rows("impression", everyone, shown=True), rows("click", clicked),
                       rows("view", clicked, value=rng.uniform(0.2, 0.8, size=int(clicked.sum()))),
                       rows("thumbs_down", down)]
    return pl.concat(events), pl.concat(pre)


def latencies(arms: dict[str, Arm]) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    return pl.concat([pl.DataFrame({"variant": variant, "latency_ms": rng.normal(arm.latency_ms, 1.0, size=200)})
                      for variant, arm in arms.items()])


NO_CORRECTIONS = pl.DataFrame(schema={"variant": pl.String, "shown": pl.List(pl.String),
                                      "corrected": pl.List(pl.String)})
NO_PRE = pl.DataFrame(schema={"user_id": pl.String, "pre_click_rate": pl.Float64})


def run(events: pl.DataFrame, arms: dict[str, Arm], expected_share: float = 0.5, pre: pl.DataFrame = NO_PRE,
        config: AnalysisConfig = AnalysisConfig()) -> ea.Analysis:
    return analyse("rollout-xgboost-v2", "canary", expected_share, events, LABELS, pre, latencies(arms),
                   NO_CORRECTIONS, config)


def by_name(analysis: ea.Analysis) -> dict[str, ea.MetricResult]:
    return {m.metric: m for m in analysis.metrics}


# -- per-user aggregation ----------------------------------------------------------------------------------------

def test_user_days_counts_each_kind_of_event_per_user_and_day():
    day = FIRST_DAY
    rows = [
        ("u1", "exposure", None, None, None, "ok"), ("u1", "exposure", None, None, None, "error"),
        ("u1", "impression", "m000", None, GENRES_OF[0], None),  # labeled, shown correctly
        ("u1", "impression", "m001", None, ["Nope"], None),  # labeled, shown wrongly
        ("u1", "impression", f"m{LABELED:03d}", None, GENRES_OF[LABELED], None),  # not labeled
        ("u1", "click", "m000", None, None, None), ("u1", "click", "m001", None, None, None),
        ("u1", "view", "m000", 0.5, None, None), ("u1", "view", "m001", 0.25, None, None),
        ("u1", "thumbs_down", "m001", None, None, None), ("u1", "genre_correction", "m001", None, None, None),
    ]
    events = pl.DataFrame([{"user_id": u, "variant": "control", "event_type": k, "movie_id": m, "value": v,
                            "shown": s, "status": st, "day": day} for u, k, m, v, s, st in rows],
                          schema=EVENT_SCHEMA)
    out = user_days(events, LABELS).row(0, named=True)
    assert {k: out[k] for k in ("impressions", "labeled_impressions", "clicks", "correct_clicks", "thumbs_down",
                                "corrections", "requests", "errors")} == {
        "impressions": 3, "labeled_impressions": 2, "clicks": 2, "correct_clicks": 1, "thumbs_down": 1,
        "corrections": 1, "requests": 2, "errors": 1}
    assert out["watch"] == pytest.approx(0.75)


# -- verdicts ----------------------------------------------------------------------------------------------------

def test_an_a_a_test_finds_nothing():
    arms = {"control": Arm(error=0.02), "canary": Arm(error=0.02)}
    events, _ = traffic(7, arms, days=3)
    analysis = run(events, arms)
    assert analysis.users == {"control": 400, "canary": 400}
    assert analysis.srm.ok and analysis.days == 3
    assert not [m.metric for m in analysis.metrics if m.improved or m.harmed]
    assert analysis.breaches == ()
    assert analysis.primary.fixed.method == "welch_t"  # no pre-period: no CUPED
    # Holm adjusts the primary and the secondaries only
    assert [m.p_adjusted is not None for m in analysis.metrics] == [True, True, True, False, False, False]


def test_a_better_treatment_improves_the_primary_metric_by_about_the_true_difference():
    arms = {"control": Arm(users=800, click=0.10), "canary": Arm(users=800, click=0.13)}
    events, _ = traffic(3, arms, impressions=30)
    analysis = run(events, arms)
    primary = analysis.primary
    assert primary.metric == PRIMARY and primary.improved and not primary.harmed
    assert primary.sequential.p_value < 1e-4
    # only labeled impressions count, and every labeled movie is shown correctly: the rate is the click rate
    assert primary.sequential.diff == pytest.approx(0.03, abs=0.008)
    assert primary.fixed.diff == pytest.approx(primary.sequential.diff)
    assert primary.sequential.ci_low < primary.sequential.diff < primary.sequential.ci_high
    assert primary.sequential.ci_low > 0
    assert by_name(analysis)["click_through"].fixed.method == "two_proportion_z"
    assert analysis.breaches == ()
    assert analysis.summary()["primary"]["improved"] is True


def test_more_thumbs_down_in_the_treatment_is_a_guardrail_breach():
    arms = {"control": Arm(thumbs_down=0.1), "canary": Arm(thumbs_down=0.5)}
    events, _ = traffic(5, arms)
    analysis = run(events, arms)
    thumbs = by_name(analysis)["thumbs_down_rate"]
    assert thumbs.harmed and thumbs.role == "guardrail"
    assert thumbs.sequential.diff == pytest.approx(0.1 * 0.4, abs=0.01)
    assert len(analysis.breaches) == 1
    assert analysis.breaches[0].startswith("thumbs_down_rate worse in canary")
    assert not analysis.primary.improved and not analysis.primary.harmed


def test_more_errors_and_a_slow_treatment_are_breaches():
    arms = {"control": Arm(error=0.01), "canary": Arm(error=0.2, latency_ms=80.0)}
    events, _ = traffic(9, arms)
    breaches = run(events, arms).breaches
    assert any(b.startswith("error_rate worse in canary") for b in breaches)
    assert any(b.startswith("latency p99") and "50 ms budget" in b for b in breaches)


def test_a_canary_whose_every_request_fails_breaches_the_error_guardrail():
    arms = {"control": Arm(), "canary": Arm(users=40)}
    events, _ = traffic(21, {"control": arms["control"]}, days=2)
    failing = pl.DataFrame({
        "user_id": [f"canary-{i:05d}" for i in range(40)] * 2, "variant": "canary", "event_type": "exposure",
        "movie_id": None, "value": None, "shown": None, "status": "error",
        "day": [FIRST_DAY] * 40 + [FIRST_DAY + timedelta(days=1)] * 40}, schema=EVENT_SCHEMA)
    analysis = run(pl.concat([events, failing]), arms, expected_share=0.1)
    # the canary users saw nothing, yet they count for the split and the error rate
    assert analysis.users["canary"] == 40
    assert any(b.startswith("error_rate worse in canary") for b in analysis.breaches)


def test_an_unbalanced_split_is_a_sample_ratio_mismatch():
    arms = {"control": Arm(users=500), "canary": Arm(users=300)}
    events, _ = traffic(11, arms)
    mismatch = run(events, arms, expected_share=0.5)
    assert not mismatch.srm.ok and mismatch.srm.p_value < 1e-6
    assert mismatch.srm.observed == (500, 300)
    assert run(events, arms, expected_share=300 / 800).srm.ok  # the same users against the planned 37.5%


def test_each_day_is_a_look_and_the_always_valid_p_value_never_goes_back_up():
    # the treatment is much better on day 1 and worse after, so the cumulative difference is gone by day 4
    arms = {"control": Arm(users=300), "canary": Arm(users=300)}
    events, _ = traffic(13, arms, days=4, impressions=10, day_click={"canary": [0.25, 0.05, 0.05, 0.05]})
    looks = [run(events.filter(pl.col("day") <= FIRST_DAY + timedelta(days=d)), arms) for d in range(4)]
    assert [a.days for a in looks] == [1, 2, 3, 4]
    assert [a.primary.sequential.looks for a in looks] == [1, 2, 3, 4]
    p = [a.primary.sequential.p_value for a in looks]
    # (each run sums per-user values in its own order, so equal p-values may differ in the last bit)
    assert all(later <= earlier * (1 + 1e-9) for earlier, later in zip(p, p[1:]))
    assert p[0] < 1e-3 and p[-1] == pytest.approx(p[0])  # the day-1 evidence is kept: a running minimum
    # whereas the fixed-horizon test on all four days no longer sees a difference
    assert looks[0].primary.fixed.p_value < 1e-6 and looks[-1].primary.fixed.p_value > 0.05
    assert looks[0].primary.sequential.diff > 0.1 and abs(looks[-1].primary.sequential.diff) < 0.01


def test_an_early_win_is_not_reported_as_harm_when_the_latest_estimate_dips_below_zero():
    arms = {"control": Arm(users=300), "canary": Arm(users=300)}
    events, _ = traffic(13, arms, days=4, impressions=10, day_click={"canary": [0.25, 0.05, 0.05, 0.05]})
    primary = run(events, arms).primary
    # the always-valid interval lies above 0 (the day-1 evidence), the latest estimate is slightly negative
    assert primary.sequential.ci_low > 0 and primary.sequential.ci_high > 0 and primary.sequential.diff < 0
    assert not primary.harmed  # fails: harmed is True, so rollout.decide would reject the challenger as worse


def test_a_pre_period_covariate_reduces_the_primary_metric_variance_with_cuped():
    arms = {"control": Arm(), "canary": Arm(click=0.11)}
    events, pre = traffic(17, arms, impressions=60, spread=0.9)
    adjusted = run(events, arms, pre=pre).primary.fixed
    raw = run(events, arms).primary.fixed
    assert adjusted.method == "cuped_welch_t" and raw.method == "welch_t"
    assert adjusted.variance_reduction > 0.3
    assert adjusted.ci_high - adjusted.ci_low < raw.ci_high - raw.ci_low
    assert adjusted.diff == pytest.approx(raw.diff, abs=0.005)


def test_no_traffic_is_an_error_that_says_so():
    empty = pl.DataFrame(schema=EVENT_SCHEMA)
    with pytest.raises(ValueError, match="rollout-xgboost-v2 has no logged traffic yet"):
        run(empty, {"control": Arm(), "canary": Arm()})


# -- shadow report -----------------------------------------------------------------------------------------------

def test_shadow_report_measures_agreement_errors_and_latency_per_shadow_version():
    def row(version, status, latency, genres, served):
        return {"shadow_version": version, "status": status, "latency_ms": latency, "genres": genres,
                "served_genres": served}

    events = pl.DataFrame([
        row("xgboost-v2", "ok", 1.0, [["Drama"], ["Comedy", "Romance"]], [["Drama"], ["Comedy"]]),
        row("xgboost-v2", "ok", 2.0, [["Action"]], [["Action"]]),
        row("xgboost-v2", "ok", 3.0, [[]], [["Horror"]]),
        row("xgboost-v2", "error", 100.0, None, None),
        row("xgboost-v3", "ok", 4.0, [["Comedy", "Drama"]], [["Drama", "Comedy"]]),
    ], schema={"shadow_version": pl.String, "status": pl.String, "latency_ms": pl.Float64,
               "genres": pl.List(pl.List(pl.String)), "served_genres": pl.List(pl.List(pl.String))})
    v2, v3 = shadow_report(events)
    assert v2["shadow_version"] == "xgboost-v2" and v2["requests"] == 4
    assert v2["movies_compared"] == 4
    assert v2["agreement"] == 0.5  # Drama and Action agree; Comedy+Romance vs Comedy and nothing vs Horror do not
    assert v2["per_genre_agreement"] == {"Action": 1.0, "Comedy": 1.0, "Drama": 1.0, "Horror": 0.75, "Romance": 0.75}
    assert v2["error_rate"] == 0.25
    assert v2["latency_p50_ms"] == pytest.approx(2.5)
    assert v2["latency_p99_ms"] == pytest.approx(3 + 0.97 * 97)  # the error's latency counts too
    assert v3["agreement"] == 1.0 and v3["error_rate"] == 0.0  # order within a genre set does not matter
    assert v3["per_genre_agreement"] == {"Comedy": 1.0, "Drama": 1.0}

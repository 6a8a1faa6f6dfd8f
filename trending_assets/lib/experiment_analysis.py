"""What an experiment's logged traffic says: per-user metrics per arm, the tests, guardrails and the shadow report.

The unit of randomisation is the user, so every metric is a per-user value (a user's clicks on correctly tagged
movies per impression, say) compared across arms with Welch's t-test, or a per-user yes/no compared with the
two-proportion z-test; counting impressions as independent would understate the variance. Each metric is also
tested sequentially (mSPRT, one look per day of data) because the platform looks every day: decisions use the
always-valid p-value, the fixed-horizon p-value is reported (with Holm across the primary and secondary metrics).

Metrics (per user, over the impressions the experiment served them):
- ``correct_click_rate`` (primary, higher is better): clicks on movies whose shown genres equal their labeled
  genres, per impression on a labeled movie; CUPED-adjusted with the user's click rate before the experiment.
- ``click_through`` (secondary): the share of users who clicked anything.
- ``watch_per_impression`` (secondary, the time-on-page proxy): watched fraction summed over views, per impression.
- guardrails, lower is better: ``thumbs_down_rate`` and ``correction_rate`` per impression, ``error_rate`` per
  request; plus ``latency_p99_ms`` against a budget and online F1 on corrected movies, both reported per arm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from trending_assets.lib import ab_stats, sequential
from trending_assets.lib.metrics import micro_f1

CONTROL = "control"
PRIMARY = "correct_click_rate"
SECONDARY = ("click_through", "watch_per_impression")
GUARDRAILS = ("thumbs_down_rate", "correction_rate", "error_rate")
# +1: higher is better; -1: lower is better
DIRECTION = {PRIMARY: 1, "click_through": 1, "watch_per_impression": 1, "thumbs_down_rate": -1,
             "correction_rate": -1, "error_rate": -1}


@dataclass(frozen=True)
class AnalysisConfig:
    alpha: float = 0.05
    # the planned absolute effects: the primary's MDE sizes the experiment; the guardrails' the harm that matters
    mde: dict = field(default_factory=lambda: {PRIMARY: 0.004, "click_through": 0.03, "watch_per_impression": 0.003,
                                               "thumbs_down_rate": 0.004, "correction_rate": 0.004,
                                               "error_rate": 0.01})
    latency_budget_ms: float = 50.0  # the treatment's p99 may not exceed it...
    min_latency_requests: int = 200  # ...once it has this many requests (a p99 of 30 requests is their maximum)
    max_f1_drop: float = 0.15  # online F1 on corrected movies, treatment vs control
    min_corrections: int = 20


@dataclass(frozen=True)
class MetricResult:
    metric: str
    role: str  # primary | secondary | guardrail
    fixed: ab_stats.Comparison
    sequential: sequential.SequentialResult
    p_adjusted: float | None = None

    # The direction comes from the always-valid interval, not the latest difference: the interval is what the
    # significance was established on, and an effect that changed sign over the days leaves it empty (neither).
    @property
    def improved(self) -> bool:
        return self.sequential.significant and self._side() == DIRECTION[self.metric]

    @property
    def harmed(self) -> bool:
        return self.sequential.significant and self._side() == -DIRECTION[self.metric]

    def _side(self) -> int:
        low, high = self.sequential.ci_low, self.sequential.ci_high
        return 1 if 0 < low <= high else -1 if low <= high < 0 else 0

    def row(self) -> dict:
        return {"metric": self.metric, "role": self.role, "method": self.fixed.method, **{
            k: getattr(self.fixed, k) for k in ("control_n", "treatment_n", "control_mean", "treatment_mean", "diff",
                                                "ci_low", "ci_high", "p_value", "variance_reduction")},
                "p_adjusted": self.p_adjusted, "sequential_p": self.sequential.p_value,
                "sequential_ci_low": self.sequential.ci_low, "sequential_ci_high": self.sequential.ci_high,
                "improved": self.improved, "harmed": self.harmed}


@dataclass(frozen=True)
class Analysis:
    experiment_id: str
    treatment: str  # the treatment arm's variant name (canary or treatment)
    days: int
    users: dict[str, int]
    srm: ab_stats.SrmResult
    metrics: tuple[MetricResult, ...]
    latency: dict[str, dict[str, float]]
    online_f1: dict[str, dict[str, float]]
    breaches: tuple[str, ...]
    primary_sd: float  # the control arm's per-user spread of the primary metric, for the power analysis

    @property
    def primary(self) -> MetricResult:
        return next(m for m in self.metrics if m.role == "primary")

    def summary(self) -> dict:
        return {"experiment_id": self.experiment_id, "days": self.days, "users": self.users,
                "srm": self.srm.as_dict(), "primary": self.primary.row(), "breaches": list(self.breaches),
                "latency": self.latency, "online_f1": self.online_f1}


def user_days(events: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Per user, arm and day: impressions, clicks, correct clicks, watch, thumbs down, corrections, requests and
    errors. ``events``: user_id, variant, event_type, movie_id, value, shown (list, impressions), status
    (exposures), day. ``labels``: movie_id, genres (labeled movies only)."""
    shown = (events.filter(pl.col("event_type") == "impression")
             .join(labels, on="movie_id", how="left")
             .with_columns(correct=pl.col("genres").is_not_null()
                           & (pl.col("shown").list.sort() == pl.col("genres").list.sort()),
                           labeled=pl.col("genres").is_not_null())
             .group_by("user_id", "movie_id").agg(pl.col("correct").last(), pl.col("labeled").last()))
    with_truth = events.join(shown, on=["user_id", "movie_id"], how="left")
    kind = pl.col("event_type")
    return (with_truth.group_by("user_id", "variant", "day").agg(
        impressions=(kind == "impression").sum(),
        labeled_impressions=((kind == "impression") & pl.col("labeled").fill_null(False)).sum(),
        clicks=(kind == "click").sum(),
        correct_clicks=((kind == "click") & pl.col("correct").fill_null(False)).sum(),
        watch=pl.when(kind == "view").then(pl.col("value")).otherwise(0.0).sum(),
        thumbs_down=(kind == "thumbs_down").sum(),
        corrections=(kind == "genre_correction").sum(),
        requests=(kind == "exposure").sum(),
        errors=((kind == "exposure") & (pl.col("status") == "error")).sum(),
    ).sort("day", "user_id"))


def _per_user(days: pl.DataFrame) -> pl.DataFrame:
    """Every user with a request or an impression; per-impression metrics are null for a user who saw nothing
    (all their requests failed), so those users count for the split and the error rate only."""
    totals = days.group_by("user_id", "variant").agg(pl.exclude("day").sum())
    saw = pl.col("impressions") > 0
    return totals.filter(saw | (pl.col("requests") > 0)).with_columns(
        correct_click_rate=pl.when(pl.col("labeled_impressions") > 0)
        .then(pl.col("correct_clicks") / pl.col("labeled_impressions")),
        click_through=pl.when(saw).then((pl.col("clicks") > 0).cast(pl.Float64)),
        watch_per_impression=pl.when(saw).then(pl.col("watch") / pl.col("impressions")),
        thumbs_down_rate=pl.when(saw).then(pl.col("thumbs_down") / pl.col("impressions")),
        correction_rate=pl.when(saw).then(pl.col("corrections") / pl.col("impressions")),
    )


def analyse(experiment_id: str, treatment: str, expected_share: float, events: pl.DataFrame, labels: pl.DataFrame,
            pre: pl.DataFrame, latencies: pl.DataFrame, corrections: pl.DataFrame,
            config: AnalysisConfig = AnalysisConfig()) -> Analysis:
    """The full analysis of one two-arm experiment (``control`` vs ``treatment``), looks once per day.

    ``expected_share``: the treatment's planned share of the experiment's users (the canary percent / 100, or
    0.5), for the sample ratio mismatch check. ``pre``: user_id, pre_click_rate. ``latencies``: variant,
    latency_ms. ``corrections``: variant, shown (list), corrected (list)."""
    daily = user_days(events, labels)
    arms = (CONTROL, treatment)
    looks = sorted(daily["day"].unique().to_list())
    if not looks:
        raise ValueError(f"experiment {experiment_id} has no logged traffic yet")
    cumulative = [_per_user(daily.filter(pl.col("day") <= day)) for day in looks]
    final = cumulative[-1].join(pre, on="user_id", how="left").with_columns(pl.col("pre_click_rate").fill_null(0.0))
    arm = {name: final.filter(pl.col("variant") == name) for name in arms}
    users = {name: arm[name].height for name in arms}
    srm = ab_stats.srm_check([users[CONTROL], users[treatment]], [1 - expected_share, expected_share])
    results = []
    for metric, role in [(PRIMARY, "primary")] + [(m, "secondary") for m in SECONDARY] + \
                        [(m, "guardrail") for m in GUARDRAILS]:
        fixed = _fixed(metric, arm[CONTROL], arm[treatment], config.alpha)
        results.append(MetricResult(metric, role, fixed, _sequential(metric, cumulative, arms, config)))
    adjusted = ab_stats.adjust_pvalues([r.fixed.p_value for r in results if r.role != "guardrail"], "holm")
    results = [MetricResult(r.metric, r.role, r.fixed, r.sequential, adjusted[i]) if r.role != "guardrail" else r
               for i, r in enumerate(results)]
    latency = {name: _percentiles(latencies.filter(pl.col("variant") == name)["latency_ms"]) for name in arms}
    f1 = {name: _online_f1(corrections.filter(pl.col("variant") == name)) for name in arms}
    breaches = [f"{r.metric} worse in {treatment} (sequential p={r.sequential.p_value:.4f}, "
                f"diff {r.sequential.diff:+.4f})" for r in results if r.role == "guardrail" and r.harmed]
    if latency[treatment]["n"] >= config.min_latency_requests and latency[treatment]["p99"] > config.latency_budget_ms:
        breaches.append(f"latency p99 {latency[treatment]['p99']:.1f} ms over the {config.latency_budget_ms:g} ms "
                        "budget")
    if min(f1[CONTROL]["n"], f1[treatment]["n"]) >= config.min_corrections and \
            f1[treatment]["f1"] < f1[CONTROL]["f1"] - config.max_f1_drop:
        breaches.append(f"online F1 {f1[treatment]['f1']:.3f} against {f1[CONTROL]['f1']:.3f} in control "
                        f"(more than {config.max_f1_drop:g} lower)")
    primary_values = arm[CONTROL][PRIMARY].drop_nulls()
    sd = float(primary_values.std()) if primary_values.len() > 1 else float("nan")
    return Analysis(experiment_id, treatment, len(looks), users, srm, tuple(results), latency, f1, tuple(breaches),
                    sd)


def _fixed(metric: str, control: pl.DataFrame, treatment: pl.DataFrame, alpha: float) -> ab_stats.Comparison:
    if metric != "error_rate":
        control, treatment = control.drop_nulls(metric), treatment.drop_nulls(metric)
    if min(control.height, treatment.height) < 2:
        return ab_stats.Comparison(metric, "too_few_users", control.height, treatment.height, float("nan"),
                                   float("nan"), float("nan"), float("-inf"), float("inf"), None, 1.0, alpha)
    if metric == "click_through":
        return ab_stats.two_proportion_test(metric, int(control[metric].sum()), control.height,
                                            int(treatment[metric].sum()), treatment.height, alpha)
    if metric == "error_rate":
        return ab_stats.two_proportion_test(metric, int(control["errors"].sum()), int(control["requests"].sum()),
                                            int(treatment["errors"].sum()), int(treatment["requests"].sum()), alpha)
    if metric == PRIMARY and pl.concat([control, treatment])["pre_click_rate"].std() > 0:
        return ab_stats.cuped_welch_test(metric, control[metric].to_numpy(), control["pre_click_rate"].to_numpy(),
                                         treatment[metric].to_numpy(), treatment["pre_click_rate"].to_numpy(), alpha)
    return ab_stats.welch_test(metric, control[metric].to_numpy(), treatment[metric].to_numpy(), alpha)


def _sequential(metric: str, cumulative: list[pl.DataFrame], arms: tuple[str, str],
                config: AnalysisConfig) -> sequential.SequentialResult:
    """One look per day: the cumulative per-user metric's difference and its Welch variance at that day."""
    diffs, variances = [], []
    for frame in cumulative:
        control, treatment = (frame.filter(pl.col("variant") == name) for name in arms)
        if metric == "error_rate":
            (d, v) = _rate_diff(control, treatment)
        else:
            d, v = sequential.welch_look(control[metric].drop_nulls().to_numpy(),
                                         treatment[metric].drop_nulls().to_numpy())
        diffs.append(d)
        variances.append(v)
    return sequential.from_looks(np.array(diffs), np.array(variances), config.mde[metric], config.alpha)


def _rate_diff(control: pl.DataFrame, treatment: pl.DataFrame) -> tuple[float, float]:
    n_c, n_t = int(control["requests"].sum()), int(treatment["requests"].sum())
    if min(n_c, n_t) == 0:
        return 0.0, float("nan")
    e_c, e_t = control["errors"].sum(), treatment["errors"].sum()
    # the variance from rates nudged off 0 and 1 (x + 0.5) / (n + 1): an arm where every request failed (or none
    # did) still has an uncertain rate, and a zero variance would make it carry no evidence at all
    q_c, q_t = (e_c + 0.5) / (n_c + 1), (e_t + 0.5) / (n_t + 1)
    variance = q_c * (1 - q_c) / n_c + q_t * (1 - q_t) / n_t
    return float(e_t / n_t - e_c / n_c), float(variance)


def _percentiles(values: pl.Series) -> dict[str, float]:
    if values.len() == 0:
        return {"n": 0, "p50": float("nan"), "p99": float("nan")}
    array = values.to_numpy()
    return {"n": int(array.size), "p50": float(np.percentile(array, 50)), "p99": float(np.percentile(array, 99))}


def _online_f1(corrections: pl.DataFrame) -> dict[str, float]:
    """Micro F1 of the shown genres against the users' corrections (only wrongly tagged movies get corrected, so
    it is a relative measure between arms, not the model's accuracy)."""
    if corrections.height == 0:
        return {"n": 0, "f1": float("nan")}
    vocabulary = sorted({g for row in corrections["shown"].to_list() + corrections["corrected"].to_list()
                         for g in row or []})
    index = {g: i for i, g in enumerate(vocabulary)}

    def matrix(column: str) -> np.ndarray:
        out = np.zeros((corrections.height, max(len(vocabulary), 1)), dtype=np.int8)
        for row, genres in enumerate(corrections[column].to_list()):
            for g in genres or []:
                out[row, index[g]] = 1
        return out

    truth, shown = matrix("corrected"), matrix("shown")
    tp, fp, fn = (truth & shown).sum(axis=0), ((1 - truth) & shown).sum(axis=0), (truth & (1 - shown)).sum(axis=0)
    return {"n": corrections.height, "f1": float(micro_f1(tp, fp, fn))}


def shadow_report(shadow_events: pl.DataFrame) -> list[dict]:
    """Per shadow version: requests, error rate, latency p50/p99, and agreement with what was served (exact
    genre sets, and per genre the share of movies where both agree on it). ``shadow_events``: shadow_version,
    status, latency_ms, genres (list of lists), served_genres (list of lists)."""
    reports = []
    for version in sorted(shadow_events["shadow_version"].unique().to_list()):
        rows = shadow_events.filter(pl.col("shadow_version") == version)
        ok = rows.filter(pl.col("status") == "ok")
        pairs = [(set(s), set(c)) for shadow, served in zip(ok["genres"].to_list(), ok["served_genres"].to_list())
                 for s, c in zip(shadow or [], served or [])]
        genres = sorted({g for s, c in pairs for g in s | c})
        per_genre = {g: round(float(np.mean([(g in s) == (g in c) for s, c in pairs])), 4) for g in genres}
        latency = _percentiles(rows["latency_ms"])
        reports.append({"shadow_version": version, "requests": rows.height,
                        "error_rate": 1 - ok.height / rows.height if rows.height else float("nan"),
                        "agreement": float(np.mean([s == c for s, c in pairs])) if pairs else float("nan"),
                        "per_genre_agreement": per_genre, "movies_compared": len(pairs),
                        "latency_p50_ms": latency["p50"], "latency_p99_ms": latency["p99"]})
    return reports


def as_rows(analysis: Analysis) -> list[dict]:
    """One row per metric, for ``experiments.results``."""
    return [{"experiment_id": analysis.experiment_id, "days": analysis.days, **m.row()} for m in analysis.metrics]

"""Feature drift tests on constructed data: the verdicts, the test chosen by size, bad input, and honesty."""

import numpy as np
import polars as pl
import pytest

from trending_assets.lib.drift import (
    INSUFFICIENT,
    DatasetDrift,
    FeatureDrift,
    categorical_drift,
    dataset_drift,
    distribution_drift,
    feature_drift,
    genre_counts,
    numeric_drift,
    to_long,
)

LANGUAGES = ["en", "fr", "es", "de", "ja"]
LANGUAGE_MIX = [0.5, 0.2, 0.15, 0.1, 0.05]
SHIFTED_MIX = [0.3, 0.2, 0.15, 0.1, 0.25]


def movies(rng: np.random.Generator, n: int, shift: float = 0.0) -> pl.DataFrame:
    """Movie-like rows; ``shift`` moves the numeric means (in standard deviations) and tilts the categories."""
    mix = np.array(LANGUAGE_MIX) * (1 - shift) + np.array(SHIFTED_MIX) * shift
    return pl.DataFrame({
        "popularity": rng.lognormal(2 + shift, 1.0, n),
        "runtime_minutes": rng.normal(105 + 15 * shift, 15, n).round(),
        "language": rng.choice(LANGUAGES, n, p=mix / mix.sum()),
        "source": rng.choice(["tmdb", "imdb", "scraper"], n, p=[0.6 - 0.3 * shift, 0.3, 0.1 + 0.3 * shift]),
    })


def drift_of(reference: pl.DataFrame, current: pl.DataFrame, **kwargs) -> DatasetDrift:
    return feature_drift(reference, current, ["popularity", "runtime_minutes"], ["language", "source"], **kwargs)


def test_same_distribution_is_not_drift_and_a_shifted_one_is():
    rng = np.random.default_rng(1)
    reference = movies(rng, 500)
    same = drift_of(reference, movies(rng, 500))
    shifted = drift_of(reference, movies(rng, 500, shift=1.0))
    assert not same.dataset_drift and same.n_drifted == 0
    assert shifted.dataset_drift and shifted.share_drifted == 1.0


def test_ks_up_to_1000_reference_rows_and_normalized_wasserstein_above():
    rng = np.random.default_rng(2)
    small = numeric_drift(pl.Series(rng.normal(0, 1, 1000)), pl.Series(rng.normal(0, 1, 300)), "x")
    large_same = numeric_drift(pl.Series(rng.normal(0, 2, 5000)), pl.Series(rng.normal(0, 2, 5000)), "x")
    large_moved = numeric_drift(pl.Series(rng.normal(0, 2, 5000)), pl.Series(rng.normal(1, 2, 5000)), "x")
    assert (small.test, small.threshold) == ("ks", 0.05) and small.p_value is not None
    assert (large_same.test, large_same.threshold, large_same.p_value) == ("wasserstein_normed", 0.1, None)
    assert large_same.statistic < 0.1 and large_same.drifted is False
    # Moving the mean by 1 with a spread of 2 is half a standard deviation.
    assert large_moved.statistic == pytest.approx(0.5, abs=0.05) and large_moved.drifted


def test_chi_squared_up_to_1000_reference_rows_and_jensen_shannon_above():
    rng = np.random.default_rng(3)
    small = categorical_drift(pl.Series(rng.choice(LANGUAGES, 800, p=LANGUAGE_MIX)),
                              pl.Series(rng.choice(LANGUAGES, 300, p=SHIFTED_MIX)), "language")
    large_same = categorical_drift(pl.Series(rng.choice(LANGUAGES, 5000, p=LANGUAGE_MIX)),
                                   pl.Series(rng.choice(LANGUAGES, 5000, p=LANGUAGE_MIX)), "language")
    large_moved = categorical_drift(pl.Series(rng.choice(LANGUAGES, 5000, p=LANGUAGE_MIX)),
                                    pl.Series(rng.choice(LANGUAGES, 5000, p=SHIFTED_MIX)), "language")
    assert small.test == "chi_squared" and small.drifted and small.p_value < 0.05
    assert large_same.test == "jensen_shannon" and large_same.drifted is False and large_same.statistic < 0.1
    assert large_moved.drifted and large_moved.statistic >= 0.1


def test_psi_is_zero_for_identical_data_and_large_for_a_shift():
    rng = np.random.default_rng(4)
    reference = movies(rng, 600)
    identical = drift_of(reference, reference)
    shifted = drift_of(reference, movies(rng, 600, shift=1.0))
    assert all(f.psi == pytest.approx(0.0, abs=1e-12) for f in identical.features)
    # 0.25 is the usual "significant shift" line for PSI.
    assert all(f.psi > 0.25 for f in shifted.features)


def test_psi_catches_values_outside_the_references_range():
    rng = np.random.default_rng(5)
    inside = numeric_drift(pl.Series(rng.uniform(0, 1, 400)), pl.Series(rng.uniform(0, 1, 400)), "x")
    beyond = numeric_drift(pl.Series(rng.uniform(0, 1, 400)), pl.Series(rng.uniform(2, 3, 400)), "x")
    assert inside.psi < 0.1 and beyond.psi > 5


def insufficient(result: FeatureDrift) -> bool:
    return result.status == INSUFFICIENT and result.drifted is None and result.statistic is None and result.reason


def test_empty_current_data_is_insufficient_never_an_error():
    reference = movies(np.random.default_rng(6), 300)
    for current in (reference.clear(), pl.DataFrame()):
        result = drift_of(reference, current)
        assert all(insufficient(f) for f in result.features)
        assert result.status == INSUFFICIENT and result.share_drifted is None and not result.dataset_drift
        assert "current has 0 values" in result.features[0].reason


def test_all_missing_columns_are_insufficient_and_their_nulls_counted():
    reference = movies(np.random.default_rng(7), 300)
    current = pl.DataFrame({"popularity": [None] * 300, "runtime_minutes": [float("nan")] * 300,
                            "language": pl.Series([None] * 300, dtype=pl.String), "source": [None] * 300})
    result = drift_of(reference, current)
    assert all(insufficient(f) for f in result.features)
    assert [f.n_missing_current for f in result.features] == [300, 300, 300, 300]


def test_tiny_samples_are_insufficient():
    rng = np.random.default_rng(8)
    result = drift_of(movies(rng, 300), movies(rng, 10, shift=1.0))
    assert all(insufficient(f) for f in result.features)
    assert "current has 10 values" in result.features[0].reason and "at least 30" in result.features[0].reason
    assert not drift_of(movies(rng, 20), movies(rng, 300), min_rows=30).dataset_drift


@pytest.mark.parametrize("n", [300, 3000])
def test_a_constant_that_stays_the_same_constant_is_not_drift(n):
    same = numeric_drift(pl.Series([7.0] * n), pl.Series([7.0] * 200), "runtime_minutes")
    moved = numeric_drift(pl.Series([7.0] * n), pl.Series([9.0] * 200), "runtime_minutes")
    one_category = categorical_drift(pl.Series(["en"] * n), pl.Series(["en"] * 200), "language")
    assert same.drifted is False and same.psi == pytest.approx(0.0)
    assert np.isfinite(moved.statistic) and moved.drifted
    assert one_category.drifted is False and one_category.status == "ok"


def test_unseen_categories_are_counted_and_a_few_do_not_raise_an_alarm():
    rng = np.random.default_rng(9)
    reference = pl.Series(rng.choice(LANGUAGES, 400, p=LANGUAGE_MIX))
    current = pl.concat([pl.Series(rng.choice(LANGUAGES, 398, p=LANGUAGE_MIX)), pl.Series(["ko", "pt"])])
    taken_over = pl.Series(["ko"] * 300)
    few = categorical_drift(reference, current, "language")
    many = categorical_drift(reference, taken_over, "language")
    assert few.extras["unseen_categories"] == 2 and few.drifted is False
    assert many.drifted and np.isfinite(many.psi)


def test_nulls_are_dropped_per_feature_and_counted():
    rng = np.random.default_rng(10)
    values = rng.normal(0, 1, 300).tolist()
    current = pl.Series(values[:250] + [None] * 50, dtype=pl.Float64)
    result = numeric_drift(pl.Series(values), current, "x")
    assert (result.n_current, result.n_missing_current, result.drifted) == (250, 50, False)


def verdict(drifted: bool | None) -> FeatureDrift:
    return FeatureDrift("f", "numeric", "ks", None, None, 0.05, drifted, None, 100, 100)


def test_dataset_drift_counts_only_judged_features_against_a_configurable_share():
    features = [verdict(True), verdict(False), verdict(None), verdict(None)]
    assert dataset_drift(features).share_drifted == 0.5 and dataset_drift(features).dataset_drift
    assert not dataset_drift(features, share=0.75).dataset_drift
    assert not dataset_drift([verdict(True), verdict(False), verdict(False)]).dataset_drift
    with pytest.raises(ValueError, match="share"):
        dataset_drift(features, share=0)


def test_prediction_and_label_drift_on_genre_counts():
    genres = pl.Series([["drama", "comedy"], ["drama"], None, [], ["horror"]])
    assert genre_counts(genres) == {"drama": 2, "comedy": 1, "horror": 1}
    reference = {"drama": 220, "comedy": 180, "horror": 80, "science_fiction": 80}
    assert distribution_drift(reference, {"drama": 110, "comedy": 90, "horror": 40, "science_fiction": 40},
                              "predicted_genres").drifted is False
    shifted = distribution_drift(reference, {"drama": 110, "comedy": 27, "horror": 120, "science_fiction": 120})
    assert shifted.drifted and shifted.test == "chi_squared"
    assert distribution_drift({k: 10 * v for k, v in reference.items()}, reference).test == "jensen_shannon"
    assert insufficient(distribution_drift(reference, {}))


def test_long_rows_have_one_row_per_feature_and_metric():
    rng = np.random.default_rng(11)
    result = drift_of(movies(rng, 300), movies(rng, 300))
    rows = to_long(result, "report-1")
    # statistic, p_value and psi per feature, unseen_categories per categorical one, three dataset rows.
    assert rows.height == 4 * 3 + 2 + 3
    assert rows["report_id"].unique().to_list() == ["report-1"]
    dataset = rows.filter(pl.col("feature") == "dataset")
    assert dataset["metric"].to_list() == ["share_drifted", "n_judged", "n_drifted"]
    assert rows.filter((pl.col("feature") == "popularity") & (pl.col("metric") == "psi"))["value"].item() >= 0


def test_false_alarms_are_rare_and_real_shifts_are_found():
    """Statistical honesty: 300 rows a side, two numeric and two categorical features, 200 no-drift pairs."""
    alarms = sum(drift_of(movies(rng, 300), movies(rng, 300)).dataset_drift
                 for rng in map(np.random.default_rng, range(100, 300)))
    found = sum(drift_of(movies(rng, 300), movies(rng, 300, shift=0.5)).dataset_drift
                for rng in map(np.random.default_rng, range(200, 220)))
    assert alarms / 200 <= 0.05
    assert found / 20 >= 0.90

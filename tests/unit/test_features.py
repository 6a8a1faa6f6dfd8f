"""The fixed feature space: stable hashed columns, a fixed width, metadata with NaN for missing, label matrices."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import polars as pl
import pytest

from trending_assets.lib.features import FeatureSpec, featurize, hashed_column, label_matrix, token_hash
from trending_assets.lib.genres import CANONICAL_GENRES

SMALL = FeatureSpec(n_hash_features=2**10)


def movies(titles: list[str | None], overviews: list[str | None], **columns) -> pl.DataFrame:
    return pl.DataFrame({"movie_id": [str(i) for i in range(len(titles))], "title": titles, "overview": overviews,
                         **columns})


def hashed_block(matrix, spec: FeatureSpec) -> dict[int, dict[int, float]]:
    """Each row's stored hashed entries as {column: value}."""
    coo = matrix[:, : spec.n_hash_features].tocoo()
    rows: dict[int, dict[int, float]] = {r: {} for r in range(matrix.shape[0])}
    for r, c, v in zip(coo.row, coo.col, coo.data):
        rows[int(r)][int(c)] = float(v)
    return rows


def same_matrix(a, b) -> bool:
    return (np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.data, b.data, equal_nan=True))


# -- stability ---------------------------------------------------------------------------------------------

def test_token_columns_are_pinned_so_saved_models_keep_reading_the_right_words():
    # Changing these numbers moves every column: bump FEATURES_REVISION if you mean to.
    assert token_hash("western") == 4959427371901901288
    assert hashed_column("western", 2**14) == 6632
    assert hashed_column("language=en", 2**14) == 2926


def test_same_text_gives_the_same_matrix_on_every_call():
    frame = movies(["Ghost Ship", "The Kiss"], ["A ghost haunts a ship.", None], popularity=[3.0, None])
    assert same_matrix(featurize(frame, FeatureSpec()), featurize(frame, FeatureSpec()))


def test_same_text_gives_the_same_columns_in_another_process_with_another_hash_seed():
    spec = FeatureSpec(max_ngram=2)
    frame = movies(["Ghost Ship", "Amélie"], ["A ghost haunts a ship; don't board.", "Paris, l'amour"])
    here = featurize(frame, spec)
    script = (
        "import json, polars as pl\n"
        "from trending_assets.lib.features import FeatureSpec, featurize\n"
        "frame = pl.DataFrame({'title': ['Ghost Ship', 'Amélie'],\n"
        "                      'overview': [\"A ghost haunts a ship; don't board.\", \"Paris, l'amour\"]})\n"
        "m = featurize(frame, FeatureSpec(max_ngram=2))\n"
        "print(json.dumps([m.indptr.tolist(), m.indices.tolist()]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    assert json.loads(out.stdout) == [here.indptr.tolist(), here.indices.tolist()]


# -- the spec and its version ------------------------------------------------------------------------------

def test_version_is_stable_and_changes_with_any_field():
    assert FeatureSpec().version == FeatureSpec().version == "b86ed26b6f39"
    variants = [FeatureSpec(n_hash_features=2**12), FeatureSpec(max_ngram=2), FeatureSpec(lowercase=False),
                FeatureSpec(categorical_columns=("source",)), FeatureSpec(text_length=False)]
    versions = {FeatureSpec().version} | {v.version for v in variants}
    assert len(versions) == len(variants) + 1


def test_spec_from_json_lists_equals_the_original():
    spec = FeatureSpec(max_ngram=2)
    again = FeatureSpec(**json.loads(json.dumps(asdict(spec))))
    assert again == spec and again.version == spec.version


@pytest.mark.parametrize("kwargs", [{"n_hash_features": 0}, {"max_ngram": 4}, {"text_columns": ()},
                                    {"log1p_columns": ("budget",)}])
def test_bad_specs_are_refused(kwargs):
    with pytest.raises(ValueError):
        FeatureSpec(**kwargs)


# -- the hashed text block ---------------------------------------------------------------------------------

def test_width_is_fixed_by_the_spec_whatever_the_words():
    a = featurize(movies(["Alien"], ["in space no one can hear you scream"]), SMALL)
    b = featurize(movies(["Zyxwvut"], ["qwertyuiop asdfghjkl never seen words 12345"]), SMALL)
    assert a.shape == b.shape == (1, SMALL.n_features)
    assert SMALL.n_features == 2**10 + len(SMALL.numeric_names)


def test_words_land_in_their_hashed_columns_with_sublinear_counts():
    rows = hashed_block(featurize(movies(["Ghost"], ["ghost GHOST, ghost!"]), SMALL), SMALL)
    assert rows[0] == {hashed_column("ghost", SMALL.n_hash_features): pytest.approx(1 + math.log(4))}


def test_a_null_overview_reads_as_no_words():
    with_null = featurize(movies(["Ghost Ship"], [None]), SMALL)
    with_empty = featurize(movies(["Ghost Ship"], [""]), SMALL)
    assert same_matrix(with_null, with_empty)
    words = {hashed_column(w, SMALL.n_hash_features) for w in ("ghost", "ship")}
    assert hashed_block(with_null, SMALL)[0].keys() == words


def test_word_pairs_keep_their_order_and_stay_inside_one_movie():
    spec = FeatureSpec(n_hash_features=2**20, max_ngram=2)
    rows = hashed_block(featurize(movies(["science fiction", "fiction science"], [None, None]), spec), spec)
    words = {hashed_column(w, spec.n_hash_features) for w in ("science", "fiction")}
    # Two words and one pair each; a pair spanning the two movies would add a fourth column.
    assert len(rows[0]) == len(rows[1]) == 3
    assert words < rows[0].keys() and words < rows[1].keys()
    assert rows[0].keys() - words != rows[1].keys() - words


def test_categorical_values_are_hashed_case_blind():
    spec = FeatureSpec(n_hash_features=2**20)
    frame = movies(["x", "x", "x"], [None, None, None], language=["EN", " en", None], source=["tmdb", None, None])
    rows = hashed_block(featurize(frame, spec), spec)
    x, en, tmdb = (hashed_column(t, spec.n_hash_features) for t in ("x", "language=en", "source=tmdb"))
    assert rows == {0: {x: 1.0, en: 1.0, tmdb: 1.0}, 1: {x: 1.0, en: 1.0}, 2: {x: 1.0}}


def test_missing_text_column_is_refused_with_its_name():
    with pytest.raises(ValueError, match="overview"):
        featurize(pl.DataFrame({"title": ["Alien"]}), FeatureSpec())


def test_an_empty_frame_gives_an_empty_matrix_of_the_right_width():
    assert featurize(movies([], []), SMALL).shape == (0, SMALL.n_features)


# -- the metadata block ------------------------------------------------------------------------------------

def test_metadata_follows_the_hashed_block_with_nan_for_missing_and_zero_kept():
    frame = movies(["a", "b"], ["one two three", None], release_year=[1999, None], popularity=[0.0, None],
                   vote_average=[7.5, None], vote_count=[99, 0])  # runtime_minutes absent altogether
    matrix = featurize(frame, SMALL)
    tail = matrix[:, SMALL.n_hash_features:].toarray()
    assert SMALL.numeric_names == ("release_year", "log1p_popularity", "vote_average", "log1p_vote_count",
                                   "runtime_minutes", "log1p_text_words")
    np.testing.assert_allclose(tail[0], [1999, 0.0, 7.5, math.log(100), np.nan, math.log1p(4)], rtol=1e-6)
    np.testing.assert_allclose(tail[1], [np.nan, np.nan, np.nan, 0.0, np.nan, math.log1p(1)], rtol=1e-6)
    # Zeros are stored, not implied: XGBoost reads an unstored entry as missing.
    assert matrix[1].nnz == len(hashed_block(matrix, SMALL)[1]) + len(SMALL.numeric_names)
    assert matrix.dtype == np.float32


# -- labels ------------------------------------------------------------------------------------------------

def test_label_matrix_marks_each_movies_genres_in_label_order():
    frame = pl.DataFrame({"genres": [["drama", "western"], [], None, ["not_a_genre", "comedy"]]},
                         schema={"genres": pl.List(pl.String)})
    labels = label_matrix(frame)
    assert labels.shape == (4, len(CANONICAL_GENRES)) and labels.dtype == np.uint8
    marked = [{CANONICAL_GENRES[j] for j in np.flatnonzero(row)} for row in labels]
    assert marked == [{"drama", "western"}, set(), set(), {"comedy"}]
    assert label_matrix(frame, ("western", "drama")).tolist() == [[1, 1], [0, 0], [0, 0], [0, 0]]


def test_label_matrix_of_no_movies_keeps_its_width():
    empty = pl.DataFrame({"genres": []}, schema={"genres": pl.List(pl.String)})
    assert label_matrix(empty).shape == (0, len(CANONICAL_GENRES))

"""The genre model's feature space: hashed words of the title and overview, then a few metadata columns.

The space is fixed by a ``FeatureSpec`` alone, never by the data: words land in a column chosen by a hash, so a
word first seen next month already has a column, and a model can keep boosting on new windows without a
vocabulary refit. Only a changed spec (its ``version``) moves columns, which makes a parent model incompatible.

A row is ``n_hash_features`` hashed columns followed by one dense column per metadata feature (``spec.numeric_names``).
Hashed entries hold ``1 + ln(count)`` of the words in that column (sublinear tf: a word said five times is
stronger evidence than once, not five times stronger); absent words are not stored, which XGBoost reads as
missing. Metadata columns are always stored, with NaN for missing values, so a real zero stays a zero.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl
from scipy import sparse

from trending_assets.lib.genres import CANONICAL_GENRES

# Bump when the featurizer's code changes what a spec means (the regex, the hash, a transform): the version
# changes with it, so models trained on the old meaning are refused instead of silently misread.
FEATURES_REVISION = 1
# Words with inner apostrophes ("don't", "o'brien"); \w is Unicode-aware, so "amélie" stays one word.
WORD_PATTERN = r"\w+(?:'\w+)*"
# The 64-bit golden ratio: multiplies the n-gram so far before the next word is added, so "a b" != "b a".
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class FeatureSpec:
    """What ``featurize`` computes; its ``version`` names the feature space.

    ``max_ngram`` 1 hashes single words, 2 adds word pairs ("science fiction"), 3 adds triples.
    Categorical values are hashed into the same block as ``column=value`` tokens, which no word can spell.
    ``log1p_columns`` are heavy-tailed counts; trees are indifferent to the transform, but people reading
    feature values are not.
    """

    n_hash_features: int = 2**14
    max_ngram: int = 1
    lowercase: bool = True
    text_columns: tuple[str, ...] = ("title", "overview")
    categorical_columns: tuple[str, ...] = ("source", "language")
    numeric_columns: tuple[str, ...] = ("release_year", "popularity", "vote_average", "vote_count", "runtime_minutes")
    log1p_columns: tuple[str, ...] = ("popularity", "vote_count")
    text_length: bool = True

    def __post_init__(self) -> None:
        # Accept lists (from JSON or a config form) but store tuples, so specs stay hashable and compare equal.
        for name in ("text_columns", "categorical_columns", "numeric_columns", "log1p_columns"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.n_hash_features < 1:
            raise ValueError(f"n_hash_features must be at least 1; got {self.n_hash_features!r}")
        if not 1 <= self.max_ngram <= 3:
            raise ValueError(f"max_ngram must be 1, 2 or 3; got {self.max_ngram!r}")
        if not self.text_columns:
            raise ValueError("text_columns must name at least one column (usually title and overview)")
        stray = set(self.log1p_columns) - set(self.numeric_columns)
        if stray:
            raise ValueError(f"log1p_columns {sorted(stray)} are not in numeric_columns {list(self.numeric_columns)}")

    @property
    def version(self) -> str:
        """12 hex characters fixed by the spec's fields and ``FEATURES_REVISION``; equal versions, equal columns."""
        text = json.dumps({"revision": FEATURES_REVISION, **asdict(self)}, sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()

    @property
    def numeric_names(self) -> tuple[str, ...]:
        """Names of the dense columns that follow the hashed block, in order."""
        names = tuple(f"log1p_{c}" if c in self.log1p_columns else c for c in self.numeric_columns)
        return names + (("log1p_text_words",) if self.text_length else ())

    @property
    def n_features(self) -> int:
        """Width of every matrix ``featurize`` returns for this spec."""
        return self.n_hash_features + len(self.numeric_names)


def featurize(frame: pl.DataFrame, spec: FeatureSpec) -> sparse.csr_matrix:
    """A float32 ``(rows, spec.n_features)`` matrix for a frame of movies, one row per movie in frame order.

    Text columns must be present (null is fine); absent metadata columns read as missing, so a serving
    request that carries only a title and an overview can still be scored.
    """
    absent = [c for c in spec.text_columns if c not in frame.columns]
    if absent:
        raise ValueError(f"featurize needs the text columns {list(spec.text_columns)}; the frame lacks {absent}")
    text = pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in spec.text_columns], separator=" ")
    if spec.lowercase:
        text = text.str.to_lowercase()
    words = frame.select(text.str.extract_all(WORD_PATTERN).alias("token")).with_row_index("row")

    rows, hashes = _token_hashes(words, frame, spec)
    columns = (hashes % np.uint64(spec.n_hash_features)).astype(np.int64)
    # Sorting (row, column) keys both merges repeats into counts and lays entries out in CSR order.
    keys, counts = np.unique(rows * spec.n_hash_features + columns, return_counts=True)
    numeric = _numeric_block(frame, spec, words["token"].list.len().to_numpy())
    return _csr(keys, 1.0 + np.log(counts), numeric, spec)


def label_matrix(frame: pl.DataFrame, genres: tuple[str, ...] = CANONICAL_GENRES) -> np.ndarray:
    """A uint8 ``(rows, len(genres))`` matrix: 1 where the movie's ``genres`` list holds that genre.

    Genres outside ``genres`` are ignored; a null or empty list is a row of zeros.
    """
    if frame.is_empty():
        return np.zeros((0, len(genres)), dtype=np.uint8)
    held = frame.select(pl.col("genres").list.contains(g).fill_null(False).alias(str(i)) for i, g in enumerate(genres))
    return held.to_numpy().astype(np.uint8).reshape(frame.height, len(genres))


def token_hash(token: str) -> int:
    """A token's 64-bit hash: blake2b of its UTF-8 bytes.

    blake2b rather than Python's ``hash`` (salted per process) or polars' hash (free to change between
    releases), so a saved model reads the same columns in any process, on any version.
    """
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")


def hashed_column(token: str, n_hash_features: int) -> int:
    """The column a single word or ``column=value`` token lands in (n-grams mix their words' hashes)."""
    return token_hash(token) % n_hash_features


def _hash_all(tokens: pl.Series) -> pl.Series:
    """64-bit hashes of a string column, calling blake2b once per distinct token."""
    vocabulary = tokens.unique()
    hashes = np.fromiter((token_hash(t) for t in vocabulary.to_list()), dtype=np.uint64, count=len(vocabulary))
    return tokens.replace_strict(vocabulary, pl.Series(hashes, dtype=pl.UInt64), return_dtype=pl.UInt64)


def _mix(previous: np.ndarray, word: np.ndarray) -> np.ndarray:
    """Extend n-gram hashes by one word: order-sensitive, then the splitmix64 finalizer to spread the bits."""
    z = previous * _GOLDEN + word
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _token_hashes(words: pl.DataFrame, frame: pl.DataFrame, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """Row and 64-bit hash of every word, word n-gram and categorical value.

    N-grams are hashed from their words' hashes in numpy rather than as joined strings, which would mean
    hashing millions of distinct pairs one by one in Python.
    """
    unigrams = words.explode("token").drop_nulls("token")
    word_rows = unigrams["row"].to_numpy().astype(np.int64)
    word_hashes = _hash_all(unigrams["token"]).to_numpy()
    rows, hashes = [word_rows], [word_hashes]
    gram = word_hashes
    for n in range(2, spec.max_ngram + 1):
        gram = _mix(gram[:-1], word_hashes[n - 1:])
        # Exploded words are contiguous per row, so an n-gram stays inside one movie iff its ends do.
        same_movie = word_rows[n - 1:] == word_rows[: len(word_rows) - (n - 1)]
        rows.append(word_rows[n - 1:][same_movie])
        hashes.append(gram[same_movie])
    for column in spec.categorical_columns:
        if column in frame.columns:
            # Codes are case-blind whatever ``lowercase`` says: "EN" and "en" are one language.
            value = pl.lit(f"{column}=") + pl.col(column).cast(pl.String).str.strip_chars().str.to_lowercase()
            tokens = frame.select(value.alias("token")).with_row_index("row").drop_nulls("token")
            rows.append(tokens["row"].to_numpy().astype(np.int64))
            hashes.append(_hash_all(tokens["token"]).to_numpy())
    return np.concatenate(rows), np.concatenate(hashes)


def _csr(keys: np.ndarray, values: np.ndarray, numeric: np.ndarray, spec: FeatureSpec) -> sparse.csr_matrix:
    """Assemble the matrix from sorted ``row * n_hash_features + column`` keys and the dense metadata block."""
    n_rows, n_numeric = numeric.shape
    rows, columns = np.divmod(keys, spec.n_hash_features)
    per_row = np.bincount(rows, minlength=n_rows) + n_numeric
    indptr = np.concatenate([[0], np.cumsum(per_row)])
    indices = np.empty(indptr[-1], dtype=np.int64)
    data = np.empty(indptr[-1], dtype=np.float32)
    # Each row holds its hashed entries, then its n_numeric metadata entries.
    hashed_at = np.arange(len(keys)) + rows * n_numeric
    indices[hashed_at], data[hashed_at] = columns, values
    numeric_at = (indptr[1:, None] - n_numeric + np.arange(n_numeric)).ravel()
    indices[numeric_at] = np.tile(np.arange(n_numeric) + spec.n_hash_features, n_rows)
    data[numeric_at] = numeric.ravel()
    return sparse.csr_matrix((data, indices, indptr), shape=(n_rows, spec.n_features))


def _numeric_block(frame: pl.DataFrame, spec: FeatureSpec, text_words: np.ndarray) -> np.ndarray:
    """Dense ``(rows, len(spec.numeric_names))`` float64 block, NaN where a value is null or its column absent."""
    columns = []
    for name in spec.numeric_columns:
        if name in frame.columns:
            values = frame[name].cast(pl.Float64).to_numpy().astype(np.float64)
        else:
            values = np.full(frame.height, np.nan)
        if name in spec.log1p_columns:
            # Counts and popularity are non-negative; a negative one is a scraping error, read as zero.
            values = np.log1p(np.maximum(values, 0.0))
        columns.append(values)
    if spec.text_length:
        columns.append(np.log1p(text_words.astype(np.float64)))
    return np.column_stack(columns) if columns else np.zeros((frame.height, 0))

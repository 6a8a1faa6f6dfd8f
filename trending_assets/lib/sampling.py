"""How a training window samples movies: seeded random, stratified by genre, or by champion uncertainty.

Every method ranks movies by a stable hash of (seed, movie_id) rather than drawing from a generator over the
input order, so a sample does not depend on how the warehouse happened to order rows, and new movies do not
reshuffle the ones already there: windows built a day apart overlap as much as they can.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import polars as pl

SAMPLING_METHODS: tuple[str, ...] = ("random", "stratified", "uncertainty")
UNCERTAINTY_FALLBACK_NOTE = (
    "uncertainty sampling requested but no champion model exists yet; fell back to stratified"
)

# Working columns, named so they cannot collide with the mart's own columns.
_KEY = "__sample_key"
_STRATUM = "__stratum"
_MARGIN = "__margin"
_ROW = "__row"


def unit_hash(salt: str, key: str) -> float:
    """A number in [0, 1) fixed forever by (salt, key).

    blake2b rather than Python's ``hash`` (salted per process) or polars' row hash (free to change between
    releases), so anyone can recompute it without stored state.
    """
    digest = hashlib.blake2b(f"{salt}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class Sample:
    """The rows a sampling method picked, the method that actually ran, and what a person should know."""

    rows: pl.DataFrame
    method: str
    notes: list[str]


def sample(
    pool: pl.DataFrame, n: int, method: str, seed: int, uncertainty: pl.DataFrame | None = None
) -> Sample:
    """Pick ``n`` movies from ``pool`` (all of them when it is smaller) with ``method``, deterministically for ``seed``.

    ``uncertainty`` holds ``movie_id`` and ``margin`` from the champion (lower is less sure). Without it,
    uncertainty sampling falls back to stratified and says so in the notes.
    """
    if method not in SAMPLING_METHODS:
        raise ValueError(f"sampling {method!r} is not one of: {', '.join(SAMPLING_METHODS)}")
    keyed = pool.with_columns(
        pl.Series(_KEY, [unit_hash(f"sample-{seed}", m) for m in pool["movie_id"]], dtype=pl.Float64)
    )
    if method == "random":
        return Sample(keyed.sort(_KEY, "movie_id").head(n).drop(_KEY), "random", [])
    if method == "uncertainty" and uncertainty is not None:
        return _by_uncertainty(keyed, n, uncertainty)
    notes = [UNCERTAINTY_FALLBACK_NOTE] if method == "uncertainty" else []
    return Sample(_stratified(keyed, n), "stratified", notes)


def _by_uncertainty(keyed: pl.DataFrame, n: int, uncertainty: pl.DataFrame) -> Sample:
    missing = {"movie_id", "margin"} - set(uncertainty.columns)
    if missing:
        raise ValueError(
            f"uncertainty frame lacks column(s) {', '.join(sorted(missing))}; "
            "it needs movie_id and margin from the champion's predictions"
        )
    margins = uncertainty.group_by(pl.col("movie_id").cast(keyed.schema["movie_id"])).agg(
        pl.col("margin").min().alias(_MARGIN)
    )
    ranked = keyed.join(margins, on="movie_id", how="left")
    notes = []
    unscored = ranked[_MARGIN].null_count()
    if unscored:
        notes.append(
            f"{unscored} of {ranked.height} candidate movies have no champion margin; "
            "they rank after every scored movie"
        )
    picked = ranked.sort(_MARGIN, _KEY, "movie_id", nulls_last=True).head(n).drop(_KEY, _MARGIN)
    return Sample(picked, "uncertainty", notes)


def _stratified(keyed: pl.DataFrame, n: int) -> pl.DataFrame:
    """Take about the same fraction of every genre stratum, at least one movie from each where ``n`` allows."""
    with_stratum = keyed.with_columns(rarest_genre(keyed).alias(_STRATUM))
    sizes = dict(with_stratum.group_by(_STRATUM).len().iter_rows())
    quotas = pl.DataFrame(
        {_STRATUM: list(sizes), "__quota": list(stratum_quotas(sizes, n).values())},
        schema={_STRATUM: pl.String, "__quota": pl.Int64},
    )
    # nulls_equal keeps movies without genres as a stratum of their own instead of silently dropping them.
    return (
        with_stratum.join(quotas, on=_STRATUM, how="left", nulls_equal=True)
        .filter(pl.col(_KEY).rank("ordinal").over(_STRATUM) <= pl.col("__quota"))
        .drop(_KEY, _STRATUM, "__quota")
    )


def rarest_genre(frame: pl.DataFrame) -> pl.Series:
    """Each movie's rarest genre within ``frame`` (ties go to the first name), null for a movie without genres.

    Stratifying a multi-label movie by its rarest genre is what keeps small genres from being drowned out
    by the comedies and dramas they are usually listed with.
    """
    exploded = (
        frame.select(pl.col("genres").list.unique()).with_row_index(_ROW).explode("genres")
    )
    counts = exploded.drop_nulls("genres").group_by("genres").len("__n")
    rarest = exploded.join(counts, on="genres", how="left").group_by(_ROW).agg(
        pl.col("genres").sort_by("__n", "genres", nulls_last=True).first()
    )
    return rarest.sort(_ROW)["genres"]


def stratum_quotas(sizes: dict[str | None, int], n: int) -> dict[str | None, int]:
    """How many movies to take from each stratum so ``n`` in all are taken in proportion to stratum size.

    Every stratum gets at least one when ``n`` covers them all; otherwise the rarest strata get one each.
    Rounding leftovers go to the strata whose exact share lost most to rounding.
    """
    total = sum(sizes.values())
    if n >= total:
        return dict(sizes)
    rarest_first = sorted(sizes, key=lambda s: (sizes[s], str(s)))
    if n < len(sizes):
        return {s: int(i < n) for i, s in enumerate(rarest_first)}
    exact = {s: size * n / total for s, size in sizes.items()}
    quotas = {s: max(1, math.floor(share)) for s, share in exact.items()}
    while sum(quotas.values()) > n:
        over = min((s for s in quotas if quotas[s] > 1), key=lambda s: (exact[s] - quotas[s], str(s)))
        quotas[over] -= 1
    while sum(quotas.values()) < n:
        under = min((s for s in quotas if quotas[s] < sizes[s]), key=lambda s: (quotas[s] - exact[s], str(s)))
        quotas[under] += 1
    return quotas

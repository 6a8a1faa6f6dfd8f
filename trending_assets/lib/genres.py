"""The genre taxonomy: canonical names and the spellings scrapers and users use for them.

Its one home is the dbt seed ``dbt_project/seeds/genre_taxonomy.csv`` (``name,genre``; a canonical genre maps to
itself), so ingestion (which canonicalises scraped genres) and dbt (which canonicalises user corrections) can never
disagree. Add a genre or an alias there.
"""

from __future__ import annotations

import csv
import re

from trending_assets.lib.home import REPO_ROOT

TAXONOMY_CSV = REPO_ROOT / "dbt_project" / "seeds" / "genre_taxonomy.csv"


def _load() -> tuple[tuple[str, ...], dict[str, str]]:
    with open(TAXONOMY_CSV, newline="") as handle:
        pairs = [(row["name"], row["genre"]) for row in csv.DictReader(handle)]
    canonical = tuple(name for name, genre in pairs if name == genre)
    unknown_targets = {genre for _, genre in pairs} - set(canonical)
    if unknown_targets:
        raise ValueError(f"{TAXONOMY_CSV}: aliases point at non-canonical genres {sorted(unknown_targets)}; "
                         "add a row 'genre,genre' for each")
    return canonical, {name: genre for name, genre in pairs if name != genre}


CANONICAL_GENRES, ALIASES = _load()


def normalize_name(name: str) -> str:
    """Lower-case, trim, and turn spaces and hyphens into underscores: ``"Sci-Fi "`` -> ``"sci_fi"``."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def canonical(name: str) -> str | None:
    """The canonical genre for a scraped name, or None when the taxonomy does not know it."""
    key = normalize_name(name)
    if key in CANONICAL_GENRES:
        return key
    return ALIASES.get(key)

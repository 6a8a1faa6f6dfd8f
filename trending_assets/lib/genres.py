"""The genre taxonomy: canonical names and the spellings scrapers use for them."""

from __future__ import annotations

import re

CANONICAL_GENRES: tuple[str, ...] = (
    "action", "adventure", "animation", "comedy", "crime", "documentary", "drama", "family", "fantasy",
    "history", "horror", "music", "mystery", "romance", "science_fiction", "thriller", "war", "western",
)

ALIASES: dict[str, str] = {
    "sci_fi": "science_fiction",
    "scifi": "science_fiction",
    "sf": "science_fiction",
    "science_fiction": "science_fiction",
    "animated": "animation",
    "anime": "animation",
    "doc": "documentary",
    "docs": "documentary",
    "musical": "music",
    "historical": "history",
    "romcom": "romance",
    "suspense": "thriller",
    "kids": "family",
}


def normalize_name(name: str) -> str:
    """Lower-case, trim, and turn spaces and hyphens into underscores: ``"Sci-Fi "`` -> ``"sci_fi"``."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def canonical(name: str) -> str | None:
    """The canonical genre for a scraped name, or None when the taxonomy does not know it."""
    key = normalize_name(name)
    if key in CANONICAL_GENRES:
        return key
    return ALIASES.get(key)

"""Vibe tags ("dark, tense, twisty") and a one-line review summary for Trending Now, from pluggable generators.

The built-ins (``generator_for``) work offline: the A/B test's two prompt variants as templates, and an embedding
generator. ``LLMGenerator`` calls a configured endpoint and falls back to a template, so serving never depends on it.
``tag_appeal`` is the simulator's ground truth of how much shown tags attract a click.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import string
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Protocol

import numpy as np

from trending_assets.lib.genres import canonical

log = logging.getLogger(__name__)

# Mood words per genre, disjoint from each other and from the simulator's signal words, so a tag names one genre.
GENRE_MOODS: dict[str, tuple[str, ...]] = {
    "action": ("explosive", "fast-paced", "gritty", "high-octane"), "comedy": ("funny", "light", "witty", "silly"),
    "drama": ("moving", "heartfelt", "bittersweet", "poignant"), "horror": ("dark", "creepy", "scary", "eerie"),
    "romance": ("romantic", "sweet", "swoony", "dreamy"), "thriller": ("tense", "twisty", "suspenseful", "taut"),
    "science_fiction": ("futuristic", "mind-bending", "cosmic", "cerebral"),
    "animation": ("whimsical", "playful", "cute", "wholesome"),
    "documentary": ("eye-opening", "insightful", "informative", "provocative"),
}
# Moods that fit no genre in particular: an embedding generator can pick them, and they then appeal to no one.
NEUTRAL_MOODS: tuple[str, ...] = ("epic", "stylish", "nostalgic", "slow-burn")
MOOD_VOCABULARY: tuple[str, ...] = (*(mood for moods in GENRE_MOODS.values() for mood in moods), *NEUTRAL_MOODS)

# Template fields: {genre} the first listed genre, {genres} all of them, {moods} mood words of the listed genres.
PROMPTS: dict[str, str] = {
    "moods_v1": "{moods}",  # mood words only: "dark, tense, twisty"
    "genre_moods_v2": "{genre} · {moods}",  # the main genre, then moods: "horror · dark, tense"
}
TEMPLATE_FIELDS = frozenset({"genre", "genres", "moods"})
MAX_TAGS = 3
SUMMARY_CHARS = 100
# A true genre's name tells a reader less about the experience than a fitting mood, so it earns half the credit.
GENRE_NAME_CREDIT = 0.5
LLM_REVIEWS = 3  # reviews sent to the endpoint per movie: enough for a summary, small enough to stay fast
LLM_INSTRUCTIONS = (  # str.format fields: template, max_tags, chars
    "Reply with two lines about the movie. Line 1: at most {max_tags} lower-case tags, comma-separated, laid out as "
    "'{template}' ({{moods}}: mood words such as dark, tense, twisty; {{genre}}, {{genres}}: its genre names). "
    "Line 2: what critics say, in one sentence under {chars} characters.")


@dataclass(frozen=True)
class MovieText:
    """What a generator may read about a movie; ``genres`` as listed (scraped or predicted), any spelling."""

    movie_id: str
    title: str
    overview: str
    genres: tuple[str, ...]
    reviews: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vibe:
    """The tags and summary shown on a movie's card, and the name of the generator that made them."""

    tags: tuple[str, ...]
    summary: str
    generator: str


class VibeGenerator(Protocol):
    """Anything with a ``name`` that makes one ``Vibe`` per movie, in order."""

    name: str

    def generate(self, movies: Sequence[MovieText]) -> list[Vibe]: ...


class TemplateGenerator:
    """A prompt variant as a template over the listed genres: offline and deterministic.

    The template's fields, in order, decide which tags are shown (see ``PROMPTS``); the text between them is layout.
    Moods take turns between the listed genres, first mood first. A movie without a known genre gets no tags.
    """

    def __init__(self, name: str, prompt: str, max_tags: int = MAX_TAGS) -> None:
        fields = [field for _, field, _, _ in string.Formatter().parse(prompt) if field is not None]
        if not fields or not set(fields) <= TEMPLATE_FIELDS:
            raise ValueError(f"template {prompt!r} of generator {name!r} must use only the fields "
                             f"{sorted(TEMPLATE_FIELDS)}, at least one, e.g. '{{genre}} · {{moods}}'")
        self.name, self.prompt, self.max_tags, self._fields = name, prompt, max_tags, fields

    def generate(self, movies: Sequence[MovieText]) -> list[Vibe]:
        return [Vibe(self._tags(movie), _summary(movie), self.name) for movie in movies]

    def _tags(self, movie: MovieText) -> tuple[str, ...]:
        genres = list(dict.fromkeys(g for g in map(canonical, movie.genres) if g is not None))
        moods = [mood for row in zip_longest(*(GENRE_MOODS.get(g, ()) for g in genres)) for mood in row if mood]
        values = {"genre": genres[:1], "genres": genres, "moods": moods}
        tags = [tag.replace("_", " ") for field in self._fields for tag in values[field]]
        return tuple(dict.fromkeys(tags))[: self.max_tags]


class EmbeddingGenerator:
    """The ``MOOD_VOCABULARY`` words nearest (cosine) to the embedded overview and reviews: offline.

    ``encoder`` maps texts to one row each; None is the bundled MiniLM, loaded on first use and shared.
    """

    def __init__(self, name: str, encoder: Callable[[list[str]], np.ndarray] | None = None,
                 max_tags: int = MAX_TAGS) -> None:
        self.name, self.max_tags, self._encoder = name, max_tags, encoder
        self._moods: np.ndarray | None = None

    def generate(self, movies: Sequence[MovieText]) -> list[Vibe]:
        encode = self._encoder or _minilm()
        if self._moods is None:
            self._moods = _unit_rows(encode(list(MOOD_VOCABULARY)))
        texts = [" ".join([movie.overview, *movie.reviews]) for movie in movies]
        similarity = _unit_rows(encode(texts)) @ self._moods.T
        # A stable sort on negated scores breaks ties by vocabulary order, so equal inputs give equal tags.
        ranked = np.argsort(-similarity, axis=1, kind="stable")[:, : self.max_tags]
        return [Vibe(tuple(MOOD_VOCABULARY[int(i)] for i in row), _summary(movie), self.name)
                for row, movie in zip(ranked, movies)]


class LLMGenerator:
    """Tags and summary from an OpenAI-compatible chat completions endpoint, laid out as ``prompt`` (a template).

    The reply's first line holds comma-separated tags, its second the summary. On any failure (HTTP error, timeout,
    malformed reply) it logs a warning and ``fallback`` (default: the template) makes this and the call's remaining
    vibes, so a dead endpoint costs one timeout per call. The token is read from ``token_env`` and never logged.
    """

    def __init__(self, name: str, url: str, prompt: str, token_env: str = "TRENDING_LLM_TOKEN",
                 timeout_s: float = 5.0, fallback: VibeGenerator | None = None, model: str | None = None) -> None:
        self.name, self.url, self.prompt, self.token_env, self.timeout_s, self.model = (
            name, url, prompt, token_env, timeout_s, model)
        self.fallback = fallback or TemplateGenerator(f"{name}:template", prompt)
        self._instructions = LLM_INSTRUCTIONS.format(template=prompt, max_tags=MAX_TAGS, chars=SUMMARY_CHARS)

    def generate(self, movies: Sequence[MovieText]) -> list[Vibe]:
        token = os.environ.get(self.token_env)
        vibes: list[Vibe] = []
        try:
            for movie in movies:
                vibes.append(self._ask(movie, token))
        except Exception as error:  # whatever went wrong with the endpoint, the page must still be served
            reason = f"{type(error).__name__}: {error}"
            if token:  # an error may echo the request's headers (a proxy's reason phrase); the token stays secret
                reason = reason.replace(token, "***")
            log.warning("vibe generator %s failed (%s); %s makes the remaining %d vibes", self.name, reason,
                        self.fallback.name, len(movies) - len(vibes))
            vibes += self.fallback.generate(movies[len(vibes):])
        return vibes

    def _ask(self, movie: MovieText, token: str | None) -> Vibe:
        about = [f"Title: {movie.title}", f"Genres: {', '.join(movie.genres) or 'unknown'}",
                 f"Overview: {movie.overview}", *(f"Review: {r}" for r in movie.reviews[:LLM_REVIEWS])]
        body = {"messages": [{"role": "system", "content": self._instructions},
                             {"role": "user", "content": "\n".join(about)}],
                "temperature": 0, **({"model": self.model} if self.model else {})}
        headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
        request = urllib.request.Request(self.url, json.dumps(body).encode(), headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            content = json.load(response)["choices"][0]["message"]["content"]
        lines = [line.strip() for line in content.splitlines() if line.strip()]
        if len(lines) < 2:
            raise ValueError(f"completion is not 'tags' then 'summary' on two lines: {content[:80]!r}")
        tags = tuple(dict.fromkeys(t.strip().lower() for t in re.split(r"[,·]", lines[0]) if t.strip()))[:MAX_TAGS]
        return Vibe(tags, _truncate(lines[1]), self.name)


@functools.cache
def generator_for(name: str) -> VibeGenerator:
    """The built-in vibe generator called ``name``, made once per name.

    ``moods_v1`` and ``genre_moods_v2`` render ``PROMPTS``; ``embedding_v1`` uses the bundled MiniLM; ``llm:<prompt>``
    calls ``TRENDING_LLM_URL`` with token ``TRENDING_LLM_TOKEN`` and model ``TRENDING_LLM_MODEL`` (optional), read on
    first use, and falls back to the ``<prompt>`` template.
    """
    if name in PROMPTS:
        return TemplateGenerator(name, PROMPTS[name])
    if name == "embedding_v1":
        return EmbeddingGenerator(name)
    prompt_name = name.removeprefix("llm:")
    if name.startswith("llm:") and prompt_name in PROMPTS:
        url = os.environ.get("TRENDING_LLM_URL")
        if not url:
            raise ValueError(f"vibe generator {name!r} needs TRENDING_LLM_URL: set it to an OpenAI-compatible chat "
                             "completions URL, e.g. export TRENDING_LLM_URL=http://localhost:8000/v1/chat/completions")
        return LLMGenerator(name, url, PROMPTS[prompt_name], fallback=generator_for(prompt_name),
                            model=os.environ.get("TRENDING_LLM_MODEL"))
    known = [*PROMPTS, "embedding_v1", *(f"llm:{prompt}" for prompt in PROMPTS)]
    raise ValueError(f"unknown vibe generator {name!r}; choose one of: {', '.join(known)}")


def tag_appeal(vibe: Vibe, true_genres: Sequence[str]) -> float:
    """How well the shown tags describe the movie's true (canonical) genres, in [0, 1]: the simulator's truth.

    ``(fitting moods + GENRE_NAME_CREDIT * true genre names) / tags shown``: a mood word of a true genre counts 1,
    a true genre's name 0.5, any other tag 0; no tags appeal 0. With correct labels ``moods_v1`` scores 1 and
    ``genre_moods_v2`` (a name and two moods) 5/6; with wrong labels both score 0.
    """
    if not vibe.tags:
        return 0.0
    fitting = {mood for genre in true_genres for mood in GENRE_MOODS.get(genre, ())}
    credit = [1.0 if tag.lower() in fitting else GENRE_NAME_CREDIT if canonical(tag) in true_genres else 0.0
              for tag in vibe.tags]
    return sum(credit) / len(credit)


def _summary(movie: MovieText) -> str:
    """The first sentence of the review with the most distinct words (else of the overview), truncated."""
    best = max(movie.reviews, key=lambda review: len(set(re.findall(r"\w+", review.lower()))), default="")
    text = best if best.strip() else movie.overview
    return _truncate(re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)[0])


def _truncate(text: str, limit: int = SUMMARY_CHARS) -> str:
    """``text`` if it fits in ``limit`` characters, else the whole words that fit beside an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)  # the word ending at ``limit`` would leave no room for the ellipsis
    return text[: cut if cut > 0 else limit - 1].rstrip(" ,;:.-") + "…"


@functools.cache
def _minilm() -> Callable[[list[str]], np.ndarray]:
    # text_drift pulls in scipy and polars, and its embedder torch: imported on first use, not with this module.
    from trending_assets.lib.text_drift import minilm_embedder

    return minilm_embedder(max_length=128)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

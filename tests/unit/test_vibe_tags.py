"""Vibe generators: templates, embeddings (a fake encoder and the bundled MiniLM), a local LLM endpoint, and appeal."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from trending_assets.lib.simulator.catalog import Movie, day_catalog
from trending_assets.lib.simulator.reviews import critic_reviews
from trending_assets.lib.simulator.world import World
from trending_assets.lib.vibe_tags import (
    GENRE_MOODS,
    MOOD_VOCABULARY,
    PROMPTS,
    EmbeddingGenerator,
    LLMGenerator,
    MovieText,
    TemplateGenerator,
    Vibe,
    generator_for,
    tag_appeal,
)

HORROR = MovieText("m1", "The Hollow Crypt", "A family moves into a haunted house. Nobody leaves.", ("Horror",))
THRILLER_DRAMA = MovieText("m2", "Last Letter", "A widow finds a coded letter.", ("thriller", "drama"),
                           ("Tense.", "A slow, tense and twisty puzzle that never lets go. Worth it."))
TOKEN = "sekrit-token-123"
COMPLETION = "Creepy, Dark, Eerie, Scary\nA haunted-house tale that earns its screams."


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    generator_for.cache_clear()
    yield
    generator_for.cache_clear()


def bag_of_words(texts: list[str]) -> np.ndarray:
    """A deterministic stand-in for a sentence encoder: hashed word counts (crc32, not the salted ``hash``)."""
    vectors = np.zeros((len(texts), 4096))
    for row, text in enumerate(texts):
        for word in re.findall(r"[\w-]+", text.lower()):
            vectors[row, zlib.crc32(word.encode()) % 4096] += 1
    return vectors


def simulated_movies(count: int = 500, seed: int = 0) -> list[tuple[MovieText, Movie]]:
    """One simulated day's movies as a generator sees them (listed genres, critics' reviews), beside the truth."""
    world = World(scenario="stable", seed=seed, drift_start=date(2026, 3, 1), movies_per_day=count, users=10)
    day = date(2026, 1, 5)
    movies = day_catalog(world, day)
    reviews = defaultdict(list)
    for review in critic_reviews(world, day, list(movies)):
        reviews[review["movie_id"]].append(review["text"])
    return [(MovieText(m.movie_id, m.title, m.overview, m.scraped_genres or (), tuple(reviews[m.movie_id])), m)
            for m in movies]


def test_template_prompts_show_moods_or_the_genre_then_moods():
    moods, genre_moods = generator_for("moods_v1"), generator_for("genre_moods_v2")
    assert moods.generate([HORROR, THRILLER_DRAMA]) == [
        Vibe(("dark", "creepy", "scary"), "A family moves into a haunted house.", "moods_v1"),
        Vibe(("tense", "moving", "twisty"), "A slow, tense and twisty puzzle that never lets go.", "moods_v1"),
    ]
    assert [vibe.tags for vibe in genre_moods.generate([HORROR, THRILLER_DRAMA])] == [
        ("horror", "dark", "creepy"), ("thriller", "tense", "moving")]
    all_genres = TemplateGenerator("all", "{genres} | {moods}", max_tags=3)
    assert all_genres.generate([THRILLER_DRAMA])[0].tags == ("thriller", "drama", "tense")
    science_fiction = MovieText("m3", "Orbit", "", ("Sci-Fi",))
    assert genre_moods.generate([science_fiction])[0].tags == ("science fiction", "futuristic", "mind-bending")


def test_movies_without_a_known_genre_get_no_tags():
    unknown = MovieText("m4", "Untitled", "Something happens.", ("musicalz",))
    assert generator_for("moods_v1").generate([unknown])[0].tags == ()
    blank = MovieText("m5", "Blank", "", ())
    assert generator_for("genre_moods_v2").generate([blank]) == [Vibe((), "", "genre_moods_v2")]


def test_templates_are_deterministic_and_respect_max_tags():
    movies = [movie for movie, _ in simulated_movies(60, seed=3)]
    for max_tags in (1, 2, 5):
        first = TemplateGenerator("t", PROMPTS["genre_moods_v2"], max_tags=max_tags).generate(movies)
        again = TemplateGenerator("t", PROMPTS["genre_moods_v2"], max_tags=max_tags).generate(movies)
        assert first == again
        assert max(len(vibe.tags) for vibe in first) == max_tags
        assert all(len(set(vibe.tags)) == len(vibe.tags) for vibe in first)


def test_a_template_with_unknown_fields_is_refused():
    with pytest.raises(ValueError, match=r"'Tags: \{vibes\}'.*\['genre', 'genres', 'moods'\]"):
        TemplateGenerator("bad", "Tags: {vibes}")
    with pytest.raises(ValueError, match="at least one"):
        TemplateGenerator("bad", "no fields at all")


def test_summaries_take_the_richest_review_and_cut_on_a_word_boundary():
    sentence = ("An estranged family gathers in a crumbling seaside house to settle a bitter inheritance, while "
                "old secrets surface one by one")
    movie = MovieText("m6", "Tide", f"{sentence}. Then it rains.", ("drama",))
    summary = generator_for("moods_v1").generate([movie])[0].summary
    assert len(summary) <= 100 and summary.endswith("…")
    head = summary.removesuffix("…")
    assert sentence.startswith(head) and sentence[len(head)] == " "
    long_word = MovieText("m7", "W", "x" * 150, ("drama",))
    assert generator_for("moods_v1").generate([long_word])[0].summary == "x" * 99 + "…"
    assert THRILLER_DRAMA.reviews[1].startswith(generator_for("moods_v1").generate([THRILLER_DRAMA])[0].summary)


def test_embedding_generator_picks_the_nearest_mood_words():
    generator = EmbeddingGenerator("emb", encoder=bag_of_words)
    spooky = MovieText("m8", "Crypt", "Dark and creepy.", ("horror",), ("Creepy, eerie, and never boring.",))
    vibes = generator.generate([spooky, THRILLER_DRAMA])
    assert vibes[0] == Vibe(("creepy", "dark", "eerie"), "Creepy, eerie, and never boring.", "emb")
    assert vibes[1].tags[:2] == ("tense", "twisty")
    assert generator.generate([spooky, THRILLER_DRAMA]) == vibes
    assert EmbeddingGenerator("emb", encoder=bag_of_words).generate([spooky, THRILLER_DRAMA]) == vibes
    assert [len(v.tags) for v in EmbeddingGenerator("two", bag_of_words, max_tags=2).generate([spooky])] == [2]
    assert generator.generate([]) == []


def test_bundled_minilm_tags_simulated_movies_offline():
    movies = [movie for movie, _ in simulated_movies(20, seed=5)]
    vibes = generator_for("embedding_v1").generate(movies)
    assert all(len(vibe.tags) == 3 and set(vibe.tags) <= set(MOOD_VOCABULARY) for vibe in vibes)
    assert {vibe.generator for vibe in vibes} == {"embedding_v1"}
    assert generator_for("embedding_v1").generate(movies) == vibes


def test_registry_caches_built_ins_and_explains_what_is_missing(monkeypatch):
    assert generator_for("moods_v1") is generator_for("moods_v1")
    assert isinstance(generator_for("embedding_v1"), EmbeddingGenerator)
    with pytest.raises(ValueError, match="unknown vibe generator 'moods_v3'.*moods_v1, genre_moods_v2, embedding_v1"):
        generator_for("moods_v3")
    with pytest.raises(ValueError, match="unknown vibe generator 'llm:nope'.*llm:moods_v1, llm:genre_moods_v2"):
        generator_for("llm:nope")
    monkeypatch.delenv("TRENDING_LLM_URL", raising=False)
    with pytest.raises(ValueError, match="needs TRENDING_LLM_URL: set it to .*export TRENDING_LLM_URL="):
        generator_for("llm:genre_moods_v2")
    monkeypatch.setenv("TRENDING_LLM_URL", "http://127.0.0.1:9/v1/chat/completions")
    monkeypatch.setenv("TRENDING_LLM_MODEL", "tiny")
    llm = generator_for("llm:genre_moods_v2")
    assert isinstance(llm, LLMGenerator) and llm is generator_for("llm:genre_moods_v2")
    assert (llm.url, llm.prompt, llm.model) == ("http://127.0.0.1:9/v1/chat/completions", PROMPTS["genre_moods_v2"],
                                                "tiny")
    assert llm.fallback is generator_for("genre_moods_v2")


class Endpoint:
    """A local chat completions server: records each request, answers as ``mode`` says."""

    def __init__(self) -> None:
        self.mode, self.requests = "ok", []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.requests.append((self.path, dict(self.headers), body))
                if endpoint.mode == "slow":
                    time.sleep(1.0)  # past the client's timeout: it has hung up, so nothing to answer
                    return
                if endpoint.mode == "error":
                    # The reason phrase echoes the token, as a careless proxy might: it must not reach the logs.
                    self.send_response(500, f"upstream refused {self.headers['Authorization']}")
                    self.end_headers()
                    return
                reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": COMPLETION}}]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(reply.encode())

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/chat/completions"


@pytest.fixture
def endpoint(monkeypatch) -> Iterator[Endpoint]:
    monkeypatch.setenv("TRENDING_LLM_TOKEN", TOKEN)
    server = Endpoint()
    thread = threading.Thread(target=server.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_llm_generator_posts_a_chat_completion_and_parses_tags_and_summary(endpoint, caplog):
    llm = LLMGenerator("llm:moods_v1", endpoint.url, PROMPTS["moods_v1"], model="tiny")
    vibes = llm.generate([HORROR, THRILLER_DRAMA])
    assert vibes == [Vibe(("creepy", "dark", "eerie"), "A haunted-house tale that earns its screams.",
                          "llm:moods_v1")] * 2
    path, headers, body = endpoint.requests[0]
    assert path == "/v1/chat/completions" and headers["Authorization"] == f"Bearer {TOKEN}"
    assert body["model"] == "tiny" and [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "'{moods}'" in body["messages"][0]["content"] and "The Hollow Crypt" in body["messages"][1]["content"]
    assert not caplog.records


@pytest.mark.parametrize("mode", ["error", "slow"])
def test_llm_generator_falls_back_once_and_never_logs_the_token(endpoint, caplog, mode):
    endpoint.mode = mode
    llm = LLMGenerator("llm:genre_moods_v2", endpoint.url, PROMPTS["genre_moods_v2"], timeout_s=0.2)
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="trending_assets.lib.vibe_tags"):
        vibes = llm.generate([HORROR, THRILLER_DRAMA, HORROR])
    assert time.perf_counter() - started < 1.0
    assert vibes == TemplateGenerator("llm:genre_moods_v2:template", PROMPTS["genre_moods_v2"]).generate(
        [HORROR, THRILLER_DRAMA, HORROR])
    assert len(endpoint.requests) == 1 and endpoint.requests[0][1]["Authorization"] == f"Bearer {TOKEN}"
    assert len(caplog.records) == 1 and "makes the remaining 3 vibes" in caplog.text
    assert ("HTTPError" if mode == "error" else "TimeoutError") in caplog.text
    assert TOKEN not in caplog.text


def test_llm_generator_without_a_server_uses_the_given_fallback(caplog):
    llm = LLMGenerator("llm:x", "http://127.0.0.1:9/none", PROMPTS["moods_v1"], timeout_s=0.5,
                       fallback=generator_for("moods_v1"))
    assert llm.generate([HORROR]) == generator_for("moods_v1").generate([HORROR])
    assert "URLError" in caplog.text


def test_tag_appeal_counts_fitting_moods_and_half_for_genre_names():
    assert tag_appeal(Vibe(("dark", "creepy", "tense"), "", "g"), ["horror"]) == pytest.approx(2 / 3)
    assert tag_appeal(Vibe(("Dark", "tense"), "", "g"), ["horror", "thriller"]) == 1.0
    assert tag_appeal(Vibe(("horror", "dark", "creepy"), "", "g"), ["horror"]) == pytest.approx(5 / 6)
    assert tag_appeal(Vibe(("science fiction",), "", "g"), ["science_fiction"]) == 0.5
    assert tag_appeal(Vibe(("funny", "comedy", "epic"), "", "g"), ["horror"]) == 0.0
    assert tag_appeal(Vibe((), "", "g"), ["horror"]) == 0.0


def test_template_prompts_differ_in_appeal_on_simulated_movies():
    pairs = simulated_movies(500, seed=0)
    means = {}
    for name in PROMPTS:
        vibes = generator_for(name).generate([movie for movie, _ in pairs])
        appeal = [tag_appeal(vibe, truth.true_genres) for vibe, (_, truth) in zip(vibes, pairs)]
        assert all(0.0 <= value <= 1.0 for value in appeal)
        means[name] = float(np.mean(appeal))
    # With correct labels moods_v1 scores 1 and genre_moods_v2 5/6; mislabeled and unlabeled movies score 0 in both.
    correct = sum(truth.scraped_genres == truth.true_genres for _, truth in pairs) / len(pairs)
    assert means["moods_v1"] == pytest.approx(0.92, abs=0.03)
    assert means["moods_v1"] - means["genre_moods_v2"] == pytest.approx(correct / 6, abs=0.01)
    assert set(GENRE_MOODS) >= {genre for _, truth in pairs for genre in truth.true_genres}

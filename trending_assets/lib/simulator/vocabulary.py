"""The words the simulated world writes with.

Each genre has its own signal words, disjoint from every other genre's and from the neutral filler, so a
model can learn genres from overviews and a test can tell which genre a word speaks for.
"""

from __future__ import annotations


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


GENRE_WORDS: dict[str, tuple[str, ...]] = {
    "action": _words(
        "explosion chase mercenary heist gunfight commando showdown pursuit rescue firefight hostage convoy "
        "sniper ambush vigilante stuntman bomb assault escape brawl rampage warlord bodyguard helicopter"
    ),
    "comedy": _words(
        "hilarious prank awkward mishap roommate slacker bumbling zany misfit quirky blunder goofy hijinks "
        "wacky roast neighbor bachelor slapstick scheme cheeky buddy sidesplitting oddball shenanigans"
    ),
    "drama": _words(
        "grief estranged inheritance addiction reconciliation illness divorce sacrifice redemption legacy "
        "struggle widow confession funeral memories hardship ambition courtroom dignity poverty trauma "
        "regret healing siblings"
    ),
    "horror": _words(
        "haunted demon possessed cursed creature slasher ghost exorcism cabin ritual undead blood nightmare "
        "occult zombie poltergeist cemetery shriek crypt witch sinister basement massacre entity"
    ),
    "romance": _words(
        "love kiss soulmate heartbreak courtship engagement passion sweetheart affair longing lovers flirt "
        "valentine chemistry proposal honeymoon crush devotion tender embrace darling rendezvous admirer wedding"
    ),
    "science_fiction": _words(
        "spaceship alien galaxy robot android planet starship asteroid colony cyborg wormhole orbit laser "
        "quantum interstellar cosmonaut mutant telepathic dimension teleport spacecraft martian nebula replicant"
    ),
    "thriller": _words(
        "conspiracy detective kidnapping assassin spy blackmail informant surveillance undercover traitor "
        "suspect ransom stalker alibi coverup interrogation witness agent dossier paranoia decoy manhunt "
        "cipher mole"
    ),
    "animation": _words(
        "animated cartoon talking puppy dragon princess toy enchanted kingdom magical friendship quest "
        "critters bunny wizard fairy sidekick colorful song pixie unicorn kitten storybook penguin"
    ),
    "documentary": _words(
        "interviews archival footage filmmaker investigation expose ecosystem wildlife firsthand testimony "
        "historian journalist activist climate chronicle portrait survivors researchers factual landmark "
        "eyewitness reportage industry scientists"
    ),
}

# Science fiction's language after vocabulary drift: the genre moves from space opera to technology.
NEW_SCIENCE_FICTION_WORDS: tuple[str, ...] = _words(
    "multiverse simulation neural algorithm singularity upload hologram nanobot biohack metaverse drone "
    "synthetic implant glitch hacker datastream cloning terraform exosuit uplink firmware protocol "
    "mainframe chatbot"
)

FILLER: tuple[str, ...] = _words(
    "the a an of and to in on with his her their its when after before must finds discovers young old new "
    "small town city life world man woman friend friends group home years journey day night story "
    "unexpected secret past local former team everything nothing beyond against between during while "
    "three two one across inside together alone decides learns begins returns soon until becomes tries "
    "help lost search face way own last first every never always something someone somewhere people "
    "place time house school street summer winter road lives father mother daughter son brother sister "
    "village country stranger truth choice chance hope fate moment change left right far back"
)

REVIEW_FILLER: tuple[str, ...] = _words(
    "the movie film plot acting cast story director scenes ending characters performance script pacing "
    "soundtrack i it this was really quite bit too very so just watched felt overall"
)

POSITIVE_WORDS: tuple[str, ...] = _words(
    "masterpiece brilliant gripping stunning delightful superb moving wonderful beautiful captivating "
    "excellent charming powerful fantastic memorable loved enjoyable clever"
)

NEGATIVE_WORDS: tuple[str, ...] = _words(
    "boring dull tedious awful predictable mess disappointing weak forgettable clumsy bland overlong "
    "terrible lazy pointless messy flat cringe"
)

TITLE_ADJECTIVES: tuple[str, ...] = _words(
    "Crimson Silent Last Broken Golden Hidden Midnight Endless Wild Lost Burning Frozen Hollow Distant "
    "Savage Gentle Secret Final Bright Dark"
)

TITLE_NOUNS: tuple[str, ...] = _words(
    "Harbor River Kingdom Promise Signal Garden Horizon Echo Storm Empire Mirror Letter Road Winter Summer "
    "Station Shadow Heart Island Crown Frontier Tide Lantern"
)

"""How an internal note's text names agents (`handoff.mentions.find`), case by case: quoted names,
emails, the longest agent name, a unique first name; ambiguous and unknown mentions name nobody."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from handoff.mentions import find


@dataclass
class Someone:
    id: int
    name: str
    email: str


AGENTS = [
    Someone(1, "Ana María", "ana.maria@example.com"),
    Someone(2, "Ana", "ana@example.com"),
    Someone(3, "Bob Stone", "bob@example.com"),
    Someone(4, "Carl Lee", "carl.lee@example.com"),
    Someone(5, "Carl Lee", "carl.lee2@example.com"),
    Someone(6, "José Ñúñez", "jose@example.com"),
    Someone(7, "Dee O'Brien (support)", "dee@example.com"),
]


@pytest.mark.parametrize(("text", "ids"), [
    ("@Ana María, can you look?", [1]),           # the longest name wins over "Ana"
    ("@ana maría", [1]),                            # case does not matter
    ("@Ana   María", [1]),                          # nor how many spaces
    ("@Ana can you look?", [2]),                    # "Ana" is a full name of its own
    ('@"Bob Stone" and @bob', [3]),                 # quoted, then the unique first name: one mention each
    ("@bob@example.com.", [3]),                     # an email, the sentence's full stop left out
    ("@BOB@EXAMPLE.COM", [3]),
    ("(@José Ñúñez)", [6]),                         # accents, after punctuation
    ("@josé", [6]),                                 # a unique first name
    ('@"Dee O\'Brien (support)" ping', [7]),        # punctuation needs the quotes
    ("@Bob Stone then @Ana María", [3, 1]),         # in order of first mention
    ("@Carl Lee please", []),                       # two agents have that name: ambiguous, left as text
    ("@Carl", []),                                  # two agents have that first name
    ("@Anabel", []),                                # no agent: a name must end at a word boundary
    ("@nobody here", []),
    ("write to ana@example.com", []),               # an email address in the text is not a mention
    ("x@Ana", []),
    ('@"Ana M" @"" @', []),
    ("no mention at all", []),
])
def test_which_agents_a_note_mentions(text: str, ids: list[int]) -> None:
    assert [agent.id for agent in find(text, AGENTS)] == ids


def test_no_candidates_no_mentions() -> None:
    assert find("@Ana", []) == []

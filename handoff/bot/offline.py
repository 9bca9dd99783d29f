"""The offline bot: answers from a knowledge file with BM25 ranking; no keys, no network.

A knowledge file is JSON: `{"entries": [{"topic", "language", "questions": [...], "answer"}]}`.
Entries sharing a topic are translations of one answer. Every entry is indexed by its questions
(and optional "keywords"); the best-ranked topic is answered in the customer's language when
the topic has an entry in it, else with the best-ranked entry.

Terms are folded words (accents and case dropped, stop words removed) cut to their first five
letters, a crude stemmer that works across the Latin-script languages ("returns", "returning"
-> "retur"); Japanese and Chinese runs become character bigrams. Ranking is Okapi BM25.

The bot is stateless: it escalates when the customer asks for a person, or when it has no good
answer and its previous turn was already its "could you rephrase?" fallback.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from handoff import notices
from handoff.bot.base import BotReply, Turn
from handoff.bot.intent import fold, wants_human
from handoff.config import Settings

PREFIX = 5
K1 = 1.5
B = 0.75
# A good answer scores at least this many times the idf of a term found in only one topic: about
# one distinctive word matched in a short entry, or several shared ones. On the demo knowledge
# file, 28 in-domain paraphrases score >= 1.27 and 16 off-topic questions <= 1.17
# (tests/bot/test_offline.py); single-word matches sit near the line, so curate questions.
MIN_SCORE = 1.2

REASON_ASKED = "customer asked for a person"
REASON_NO_ANSWER = "no answer found twice in a row"

# Folded stop words of the Latin-script languages. "where", "when", "how" and their translations
# stay: in a FAQ they carry the intent (where -> tracking, when -> delivery time).
_STOP_WORDS = frozenset(
    """
    a an the i me my we our you your it its is are was were be been am do does did can could would
    will shall should may might must to of in on at for from with by about and or but if so not no
    what which who whom why this that these those there here have has had get got
    just also any some please pls good great want need take know tell make let
    el la los las un una unos unas de del al y o en con por para que cual es son
    esta estan soy mi mis tu tus su sus me te se le lo nos yo puedo puede hay ya muy mas
    le la les un une des du de et ou en au aux avec pour par que qui quoi quel quelle est sont
    je tu il elle nous vous ils mon ma mes ton ta tes son sa ses votre vos ce cette peux peut
    der die das den dem des ein eine einen einem einer und oder in im an am auf mit fur von zu ist
    sind ich du er sie es wir ihr mein meine meinen dein ihre ihren was kann
    o a os as um uma de do da dos das e ou em no na nos nas com por para que qual eu
    meu minha seu sua voce posso pode
    il lo la gli le un uno una di del della e o in con per che cosa quale sono mio mia io
    de het een en of in op met voor van dat die wat ik mijn je jouw u uw is zijn kan
    yang dan atau di ke dari dengan untuk apa saya aku kamu anda ini itu
    bisa ada
    """.split()
)
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]+")
_OTHER_RUN = re.compile(r"[^\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]+")


def terms(text: str) -> list[str]:
    """The index terms of `text`: folded, stop words dropped, stemmed to a prefix, CJK bigrams."""
    folded = fold(text)
    out: list[str] = []
    for run in _CJK_RUN.findall(folded):
        out.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
    for run in _OTHER_RUN.findall(folded):
        out.extend(w[:PREFIX] for w in run.split() if len(w) > 1 and w not in _STOP_WORDS)
    return out


@dataclass(frozen=True)
class Entry:
    """One question-and-answer entry of the knowledge file, in one language."""

    topic: str
    language: str
    questions: tuple[str, ...]
    answer: str
    keywords: tuple[str, ...] = ()


class BM25:
    """Okapi BM25 over a fixed list of documents, each given as a list of terms.

    `groups` (one label per document) makes document frequency count groups instead of
    documents, so that translations of one answer don't make their shared words look common.
    """

    def __init__(
        self,
        documents: Sequence[Sequence[str]],
        groups: Sequence[str] | None = None,
        k1: float = K1,
        b: float = B,
    ) -> None:
        self.k1, self.b = k1, b
        self.tfs = [Counter(doc) for doc in documents]
        self.lengths = [len(doc) for doc in documents]
        self.avg_length = sum(self.lengths) / len(documents) if documents else 0.0
        labels = list(groups) if groups is not None else list(range(len(documents)))
        df = Counter(term for term, _ in {(t, g) for tf, g in zip(self.tfs, labels) for t in tf})
        self.n = len(set(labels))
        self.idf = {term: self._idf(d) for term, d in df.items()}

    def _idf(self, df: int) -> float:
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    @property
    def unique_idf(self) -> float:
        """The idf of a term found in a single document (or group): the scale of a good match."""
        return self._idf(1)

    def scores(self, query: Iterable[str]) -> list[float]:
        """The BM25 score of every document for `query`, in document order."""
        query_terms = [t for t in set(query) if t in self.idf]
        result = []
        for tf, length in zip(self.tfs, self.lengths):
            norm = self.k1 * (1 - self.b + self.b * length / self.avg_length)
            result.append(
                sum(self.idf[t] * tf[t] * (self.k1 + 1) / (tf[t] + norm) for t in query_terms if t in tf)
            )
        return result


class OfflineBot:
    """A Bot that answers from a knowledge file and escalates when it can't help."""

    def __init__(self, entries: Sequence[Entry], *, min_score: float = MIN_SCORE) -> None:
        if not entries:
            raise ValueError("the knowledge base has no entries")
        self.entries = tuple(entries)
        self.min_score = min_score
        self._terms = [terms(" ".join((*e.questions, *e.keywords))) for e in self.entries]
        # Document frequency counts topics: "PayPal" in both translations stays distinctive.
        self.index = BM25(self._terms, groups=[e.topic for e in self.entries])
        self._exact = {fold(q): i for i, e in enumerate(self.entries) for q in e.questions}
        self._fallbacks = {_clean(t) for t in notices.all_translations("fallback").values()}

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: float) -> OfflineBot:
        """A bot answering from the JSON knowledge file at `path`."""
        return cls(load_entries(Path(path).read_text(encoding="utf-8")), **kwargs)

    @classmethod
    def default(cls) -> OfflineBot:
        """A bot answering from the bundled demo-shop knowledge file."""
        text = resources.files("handoff.bot").joinpath("knowledge.json").read_text(encoding="utf-8")
        return cls(load_entries(text))

    @classmethod
    def from_settings(cls, settings: Settings) -> OfflineBot:
        """The bot for `settings.knowledge_file`, or the demo knowledge when it is unset."""
        return cls.from_file(settings.knowledge_file) if settings.knowledge_file else cls.default()

    def search(self, query: str, language: str | None = None) -> tuple[Entry, float] | None:
        """The best entry for `query` and its relative score, in `language` if its topic has one."""
        scale = self.index.unique_idf
        scores = [score / scale for score in self.index.scores(terms(query))]
        best = max(range(len(scores)), key=scores.__getitem__)
        exact = self._exact.get(fold(query))
        if exact is not None:  # one of the entry's own questions, word for word
            best, scores[exact] = exact, max(scores[exact], self.min_score)
        if scores[best] <= 0 or scores[best] < self.min_score:
            return None
        top = self.entries[best]
        lang = notices.normalize_language(language)
        translated = [i for i, e in enumerate(self.entries) if e.topic == top.topic and e.language == lang]
        chosen = max(translated, key=scores.__getitem__) if translated else best
        return self.entries[chosen], scores[best]

    def is_fallback(self, text: str) -> bool:
        """True if `text` is this bot's "could you rephrase?" reply, in any language."""
        return _clean(text) in self._fallbacks

    async def reply(self, history: Sequence[Turn], language: str) -> BotReply:
        """Answer the customer's latest messages, ask to rephrase, or escalate."""
        cut = len(history)
        while cut > 0 and history[cut - 1].author == "customer":
            cut -= 1
        latest = [turn.text for turn in history[cut:]]
        if any(wants_human(text) for text in latest):
            return BotReply(escalate=True, reason=REASON_ASKED)
        # The newest message alone first ("hi" + "do you take Visa?"), then all of them together
        # (a question split over several messages).
        found = None
        for query in dict.fromkeys(latest[-1:] + ["\n".join(latest)]):
            found = self.search(query, language)
            if found is not None:
                break
        if found is not None:
            return BotReply(text=found[0].answer)
        previous = history[cut - 1] if cut > 0 else None
        if previous is not None and previous.author == "bot" and self.is_fallback(previous.text):
            return BotReply(escalate=True, reason=REASON_NO_ANSWER)
        return BotReply(text=notices.phrase("fallback", language))


def load_entries(text: str) -> list[Entry]:
    """Parse a knowledge file's JSON text; raises ValueError naming the first bad entry."""
    data = json.loads(text)
    raw = data.get("entries") if isinstance(data, dict) else data
    if not isinstance(raw, list):
        raise ValueError('a knowledge file is {"entries": [...]}')
    entries = []
    for i, item in enumerate(raw):
        try:
            questions = item["questions"]
            if isinstance(questions, str) or not all(isinstance(q, str) for q in questions):
                raise TypeError("questions must be a list of strings")
            answer = item["answer"]
            if not isinstance(answer, str) or not answer.strip() or not questions:
                raise ValueError("an entry needs questions and a non-empty answer")
            entries.append(
                Entry(
                    topic=str(item.get("topic") or f"entry-{i}"),
                    language=notices.normalize_language(item.get("language")),
                    questions=tuple(questions),
                    answer=answer,
                    keywords=tuple(item.get("keywords", ())),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"knowledge entry {i}: {exc!r}") from exc
    return entries


def _clean(text: str) -> str:
    return " ".join(text.split()).casefold()

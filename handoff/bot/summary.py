"""The offline summarizer: a ticket's subject and summary an agent can act on, with no model.

Deterministic and network-free; what every install without `OPENAI_API_KEY` shows. It reads the
current takeover cycle (the turns since the last handback; earlier cycles only when this one has
no customer words yet, and then as one "earlier" line) and writes, in the conversation's language
(the lead-ins come from the notice catalogs, `handoff.notices.PHRASES`):

    Ana Souza asks about: <what they want now>            ("Customer asks about:" when unnamed)
    Also said: <one more informative customer message>     (when there is one)
    The AI assistant answered: <its last real answer>      (or "The AI assistant had no answer.")
    Asked to talk to a person.                             (when they did)
    Earlier in this conversation: <an earlier cycle's request>

What they want is the customer's latest informative message (three content terms at least, links
and requests for a person left out), else their most informative one; the subject is that
request, at most 80 characters. The answer is the bot's last one after that request; its fallback
("I'm not sure I understood…", in any language) is not an answer. The earlier line gives the
most informative thing the customer said in the cycles before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from handoff import notices
from handoff.bot.base import Summary, Turn
from handoff.bot.intent import wants_human
from handoff.bot.offline import terms

_URL = re.compile(r"https?://\S+")
SUBJECT_MAX = 80
LINE_MAX = 160
# A request or a further line needs at least this many content words ("hi", "thanks", "hello again"
# don't make one).
MIN_TERMS = 3
_FALLBACKS = frozenset(notices.all_translations("fallback").values())


def shorten(text: str, limit: int) -> str:
    """`text` on one line, cut at a word boundary with an ellipsis to fit `limit` characters."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.-") + "…"


def _informativeness(text: str) -> int:
    # Asking for a person says little about the problem itself, and neither do links (a shared
    # reel's "[reel] https://…" would otherwise outrank the question about it).
    return 0 if wants_human(text) else len(set(terms(_URL.sub(" ", text))))


def _customer_texts(turns: Sequence[Turn]) -> list[str]:
    return list(dict.fromkeys(t.text.strip() for t in turns if t.author == "customer" and t.text.strip()))


def request_of(said: Sequence[str]) -> int:
    """The index of what the customer wants: their latest informative message, else their most informative."""
    informative = [i for i, text in enumerate(said) if _informativeness(text) >= MIN_TERMS]
    if informative:
        return informative[-1]
    return _most_informative(said)


def _most_informative(said: Sequence[str]) -> int:
    return max(range(len(said)), key=lambda i: (_informativeness(said[i]), i))


class OfflineSummarizer:
    """A Summarizer built from the conversation's own words, with no model behind it."""

    async def summarize(self, history: Sequence[Turn], language: str, contact: str | None = None) -> Summary:
        """A subject (<= 80 chars) and 1-5 summary lines (see the module docstring)."""
        current = [t for t in history if not t.earlier]
        earlier = [t for t in history if t.earlier]
        said = _customer_texts(current)
        if not said:  # nothing new was said since the handback: the earlier cycles are all there is
            current, earlier, said = list(history), [], _customer_texts(history)
        if not said:
            empty = notices.phrase("no_subject", language)
            return Summary(subject=empty, summary=empty)
        main = request_of(said)
        lead = (notices.phrase("summary_lead_named", language).format(contact=shorten(contact, 60)) if contact
                else notices.phrase("summary_lead", language))
        lines = [f"{lead} {shorten(said[main], LINE_MAX)}"]
        details = [text for i, text in enumerate(said) if i != main and _informativeness(text) >= MIN_TERMS]
        if details:
            lines.append(f"{notices.phrase('summary_details', language)} {shorten(details[-1], LINE_MAX)}")
        asked_at = max(i for i, t in enumerate(current) if t.author == "customer" and t.text.strip() == said[main])
        lines += _bot_line(current[asked_at + 1 :], language)
        if any(wants_human(text) for text in said):
            lines.append(notices.phrase("summary_person", language))
        before = _customer_texts(earlier)
        if before:
            lines.append(f"{notices.phrase('summary_earlier', language)} {shorten(before[_most_informative(before)], LINE_MAX)}")
        return Summary(subject=shorten(said[main], SUBJECT_MAX), summary="\n".join(lines))


def _bot_line(turns: Sequence[Turn], language: str) -> list[str]:
    """The line on what the bot answered in `turns` (those after the request); none when it did not speak."""
    answers = [t.text.strip() for t in turns if t.author == "bot" and t.text.strip()]
    if not answers:
        return []
    real = [text for text in answers if text not in _FALLBACKS]
    if not real:
        return [notices.phrase("summary_no_answer", language)]
    return [f"{notices.phrase('summary_bot', language)} {shorten(real[-1], LINE_MAX)}"]

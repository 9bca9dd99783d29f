"""The offline summarizer: a ticket's subject and summary from the customer's own words.

Deterministic and network-free. The most informative customer message (the most distinct
content terms, links left out; requests for a person count only when nothing else was said) becomes the
subject and the summary's first line, after a lead-in in the conversation's language
("Customer asks about:"); up to two more informative messages follow, in conversation order.
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
MAX_LINES = 3
# A further line needs at least this many content words ("hi", "thanks" don't make one).
MIN_TERMS = 2


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


class OfflineSummarizer:
    """A Summarizer built from the customer's messages, with no model behind it."""

    async def summarize(self, history: Sequence[Turn], language: str) -> Summary:
        """A subject (<= 80 chars) and 1-3 summary lines from the customer's own messages."""
        texts = (t.text.strip() for t in history if t.author == "customer")
        said = list(dict.fromkeys(text for text in texts if text))
        if not said:
            empty = notices.phrase("no_subject", language)
            return Summary(subject=empty, summary=empty)
        lead = notices.phrase("summary_lead", language)
        ranked = sorted(range(len(said)), key=lambda i: (-_informativeness(said[i]), -i))
        main = ranked[0]
        others = sorted(i for i in ranked[1:MAX_LINES] if _informativeness(said[i]) >= MIN_TERMS)
        lines = [f"{lead} {shorten(said[main], LINE_MAX)}"]
        lines += [f"- {shorten(said[i], LINE_MAX)}" for i in others]
        return Summary(subject=shorten(said[main], SUBJECT_MAX), summary="\n".join(lines))

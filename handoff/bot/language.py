"""The conversation's language, detected from the customer's own messages with lingua.

The detector knows only the languages we have notice catalogs for (`handoff.notices.LANGUAGES`)
and is built once, lazily, or at startup with `preload()`: its models take about a second and
~240 MB to load. Detection is synchronous CPU work (well under a millisecond once loaded).

Short and ambiguous text ("ok", "hi", a product name, an order number) returns None so that it
never flips a conversation to another language; the caller keeps the language it had. The
thresholds were measured on short customer messages in all ten languages plus ~80 neutral ones
(acknowledgements, brands, order codes): see the numbers in tests/bot/test_language.py.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

from lingua import IsoCode639_1, LanguageDetector, LanguageDetectorBuilder

from handoff.notices import LANGUAGES

# A latin-script text needs this many letters over at least two words...
MIN_LETTERS = 10
MIN_WORDS = 2
# ...and the best language must lead the runner-up by this much confidence (0..1).
MIN_MARGIN = 0.2
MIN_CONFIDENCE = 0.4
# Japanese and Chinese are told apart by script; two characters are enough.
MIN_CJK_CHARS = 2
# Only the most recent messages speak for the conversation's current language.
RECENT_TEXTS = 5

# URLs, e-mail addresses and anything with a digit (order numbers, SKUs), in ASCII only so that
# unspaced Japanese or Chinese around them survives.
_NOISE = re.compile(r"(?:https?://|www\.)[!-~]+|[!-~]+@[!-~]+|[!-~]*\d[!-~]*")
_WORD = re.compile(r"[^\W\d_]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")

_detector: LanguageDetector | None = None
_lock = threading.Lock()


def _build(preloaded: bool) -> LanguageDetector:
    codes = [getattr(IsoCode639_1, code.upper()) for code in LANGUAGES]
    builder = LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
    if preloaded:
        builder = builder.with_preloaded_language_models()
    return builder.build()


def _get_detector(preloaded: bool = False) -> LanguageDetector:
    global _detector
    if _detector is None:
        with _lock:
            if _detector is None:
                _detector = _build(preloaded)
    return _detector


def preload() -> None:
    """Build the detector and load its language models now (call once at startup)."""
    _get_detector(preloaded=True)


def detect_language(texts: Sequence[str]) -> str | None:
    """The ISO 639-1 code of the customer's recent messages (oldest first), or None if unsure."""
    text = "\n".join(t for t in texts[-RECENT_TEXTS:] if t)
    text = _NOISE.sub(" ", text)
    cjk = len(_CJK.findall(text))
    if cjk < MIN_CJK_CHARS and sum(map(len, _WORD.findall(text))) < MIN_LETTERS:
        return None
    values = _get_detector().compute_language_confidence_values(text)
    if not values:
        return None
    best = values[0].language.iso_code_639_1.name.lower()
    if best in ("ja", "zh") and cjk >= MIN_CJK_CHARS:
        return best
    words = _WORD.findall(_CJK.sub(" ", text))
    if len(words) < MIN_WORDS or sum(map(len, words)) < MIN_LETTERS:
        return None
    confidence = values[0].value
    runner_up = values[1].value if len(values) > 1 else 0.0
    if confidence < MIN_CONFIDENCE or confidence - runner_up < MIN_MARGIN:
        return None
    return best

"""Text every store accepts alike: the one place that makes text, ids and JSON storable.

PostgreSQL refuses U+0000 in `text` and `\\u0000` in `jsonb`; neither store can encode a
lone UTF-16 surrogate (U+D800–U+DFFF, which JSON's `"\\ud800"` escape produces) as UTF-8,
while SQLite keeps a NUL. So both become U+FFFD REPLACEMENT CHARACTER before anything is
stored, on both stores: the same input is stored as the same value on SQLite and PostgreSQL.
A NUL is replaced rather than removed so that two ids differing only by it stay distinct.
Paired surrogates never reach here (`json.loads` joins them into one code point).
"""

from __future__ import annotations

import re
from typing import Any, overload

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@overload
def text(value: str) -> str: ...
@overload
def text(value: None) -> None: ...
def text(value: str | None) -> str | None:
    """`value` with NUL and lone surrogates replaced by U+FFFD (None and clean text unchanged)."""
    if value is None or _UNSTORABLE.search(value) is None:
        return value
    return _UNSTORABLE.sub(REPLACEMENT, value)


def json_value(value: Any) -> Any:
    """A JSON value (dicts, lists, strings, numbers...) with every string and key made storable.

    Values other than str/dict/list/tuple are returned as they are; dicts and lists are copied
    only when something in them changed.
    """
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        cleaned = {text(k) if isinstance(k, str) else k: json_value(v) for k, v in value.items()}
        return value if _same(cleaned.items(), value.items()) else cleaned
    if isinstance(value, (list, tuple)):
        items = [json_value(v) for v in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return type(value)(items)
    return value


def _same(new: Any, old: Any) -> bool:
    return all(k1 is k2 and v1 is v2 for (k1, v1), (k2, v2) in zip(new, old))

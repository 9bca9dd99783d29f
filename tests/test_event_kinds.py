"""Event kinds have one source, `handoff.events.EventKind`: Python compares and publishes its
members, and the desk's scripts read them from the generated `static/desk/kinds.js`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from handoff.events import EventKind, kinds_js

PACKAGE = Path(__file__).resolve().parent.parent / "handoff"
DESK_JS = PACKAGE / "web" / "static" / "desk"
PENDING: tuple[str, ...] = ()  # modules not yet converted: none
# A kind's text may also be another protocol's word: "typing" is a widget frame type, a Telegram
# chat action and a JSON property. Only comparisons with an event's kind, and publishes, count.
KINDS = {str(k) for k in EventKind}


def test_kinds_js_is_generated_from_event_kind() -> None:
    assert (DESK_JS / "kinds.js").read_text() == kinds_js()
    assert 'STREAM_LAGGED: "stream.lagged",' in kinds_js()
    assert "internal." not in kinds_js()  # hub-internal kinds never reach the desk


def _kind_literals(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                items = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
                if any(isinstance(i, ast.Constant) and i.value in KINDS - {"typing"} for i in items):
                    lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "publish", "add", "subscribe") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and first.value in KINDS:
                lines.append(node.lineno)
    return lines


def test_python_uses_event_kind_members() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "events.py" or rel.startswith(PENDING):
            continue
        offenders += [f"{rel}:{line}" for line in _kind_literals(ast.parse(path.read_text()))]
    assert offenders == []


def test_detector_sees_a_literal_kind() -> None:
    source = 'if kind == "ticket.created": pass\nhub.publish("message.updated", x=1)\nk in ("stream.lagged",)'
    assert _kind_literals(ast.parse(source)) == [1, 2, 3]


def test_desk_scripts_compare_kinds_through_kinds_js() -> None:
    offenders = []
    for path in sorted(DESK_JS.rglob("*.js")):
        if path.name == "kinds.js":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for literal in re.findall(r'kind\s*===?\s*"([^"]+)"', line):
                if literal in KINDS:
                    offenders.append(f"{path.name}:{number}: {literal}")
    assert offenders == []

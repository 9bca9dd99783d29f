"""The import graph of `handoff/`, read from the source with `ast` (docs/architecture.md, "Layers").

Every `import` and `from ... import` in every module counts: at module level, inside functions,
and under `if TYPE_CHECKING:`. Checked:

- no import cycle among the imports that run (annotation-only imports under `if TYPE_CHECKING:`
  never execute, so they cannot form a cycle at import time);
- no arrow from the core or the base up to the routing layer or an edge, and none from the base
  up to the core (annotation-only imports included: a type is a dependency too);
- no function-local import of a handoff module, except the lazy loads listed in LAZY with
  their reason.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "handoff"

BASE, CORE, ROUTING, EDGE = 0, 1, 2, 3
LAYER_NAMES = {BASE: "base", CORE: "core", ROUTING: "routing", EDGE: "edge"}

# Path prefixes (relative to handoff/) and their layer; the longest matching prefix wins.
LAYERS = {
    "channels/": EDGE,
    "channels/base.py": CORE,  # the Channel protocol the edges implement and the outbox calls
    "desk/": EDGE,
    "web/": EDGE,
    "cli.py": EDGE,
    "app.py": ROUTING,
    "routes.py": ROUTING,
    "bodies.py": ROUTING,
    "http_errors.py": ROUTING,
    "access_log.py": ROUTING,
    "validation.py": ROUTING,
    "ingest.py": CORE,
    "canned.py": CORE,
    "gateway.py": CORE,
    "receipts.py": CORE,
    "changes.py": CORE,
    "contact_names.py": CORE,
    "bot/": CORE,
    "transitions.py": CORE,
    "presence.py": CORE,
    "errors.py": CORE,
    "outbox.py": CORE,
    "sweeper.py": CORE,
    "timeline.py": CORE,
    "hub.py": CORE,
    "events.py": CORE,
    "mentions.py": CORE,
    "notices/": CORE,
    "runtime.py": CORE,
    "models.py": BASE,
    "states.py": BASE,
    "schema.py": BASE,
    "config.py": BASE,
    "backoff.py": BASE,
    "db.py": BASE,
    "metrics.py": BASE,
    "media.py": BASE,
    "lease.py": BASE,
    "hours.py": BASE,
    "eventlog.py": BASE,
    "storable.py": BASE,
    "group_commit.py": BASE,
    "sql.py": BASE,
    "sqlite.py": BASE,
    "postgres.py": BASE,
    "migrations/": BASE,
    "__init__.py": BASE,
}

# Function-local imports of handoff modules that are deliberate: (importer, imported) -> reason.
LAZY = {
    ("handoff.bot.factory", "handoff.bot.openai_bot"):
        "the openai SDK (~0.5 s to import) loads only when OPENAI_API_KEY is set",
    ("handoff.bot.factory", "handoff.bot.openai_summarizer"):
        "the openai SDK (~0.5 s to import) loads only when OPENAI_API_KEY is set",
    ("handoff.bot.factory", "handoff.bot.openai_compose"):
        "the openai SDK (~0.5 s to import) loads only when OPENAI_API_KEY is set",
}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    local: bool  # inside a function
    typing_only: bool  # under `if TYPE_CHECKING:`


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(path: Path) -> int:
    relative = path.relative_to(PACKAGE).as_posix()
    matches = [prefix for prefix in LAYERS if relative == prefix or (prefix.endswith("/") and relative.startswith(prefix))]
    if not matches:
        raise AssertionError(f"handoff/{relative} has no layer: add it to LAYERS")
    return LAYERS[max(matches, key=len)]


PATHS = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(path): path for path in PATHS}


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path) -> list[Import]:
    """The handoff modules `path` imports; `from package import name` names the submodule when
    `name` is one."""
    importer = module_name(path)
    found: list[Import] = []

    def visit(node: ast.AST, local: bool, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, True, typing_only)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    visit_statement(statement, local, True)
                for statement in child.orelse:
                    visit_statement(statement, local, typing_only)
            else:
                visit_statement(child, local, typing_only)

    def visit_statement(node: ast.AST, local: bool, typing_only: bool) -> None:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(importer, path.name == "__init__.py", node)
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                       for alias in node.names]
        else:
            visit(node, local, typing_only)
            return
        for target in targets:
            while target and target not in MODULES:  # `import handoff.x.y` names the module x.y
                target = target.rpartition(".")[0]
            if target.startswith("handoff") and target in MODULES and target != importer:
                found.append(Import(importer, target, node.lineno, local, typing_only))

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False, False)
    return found


IMPORTS = [i for path in PATHS for i in imports_of(path)]


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return components


def test_the_graph_is_read_from_every_module() -> None:
    assert len(MODULES) > 60 and "handoff.transitions" in MODULES
    pairs = {(i.importer, i.imported) for i in IMPORTS}
    assert ("handoff.gateway", "handoff.bot.turn") in pairs
    assert ("handoff.desk.slack", "handoff.desk.slack.actions") in pairs  # `from package import module`
    assert any(i.typing_only for i in IMPORTS if i.importer == "handoff.outbox")
    assert all(layer_of(path) in LAYER_NAMES for path in PATHS)


def test_no_import_cycles() -> None:
    edges: dict[str, set[str]] = {}
    for i in IMPORTS:
        if not i.typing_only:
            edges.setdefault(i.importer, set()).add(i.imported)
    assert find_cycles(edges) == []


def test_the_core_and_the_base_import_nothing_above_them() -> None:
    upward = []
    for i in IMPORTS:
        source, target = layer_of(MODULES[i.importer]), layer_of(MODULES[i.imported])
        if source <= CORE and target > source:
            upward.append(f"{i.importer} ({LAYER_NAMES[source]}) -> {i.imported} ({LAYER_NAMES[target]}), "
                          f"line {i.line}")
    assert upward == []


def test_no_function_local_imports_of_handoff_modules_but_the_listed_lazy_loads() -> None:
    local = {(i.importer, i.imported): i.line for i in IMPORTS if i.local}
    unlisted = [f"{importer} -> {imported}, line {line}" for (importer, imported), line in local.items()
                if (importer, imported) not in LAZY]
    assert unlisted == []
    assert all(reason.strip() for reason in LAZY.values())
    assert set(LAZY) <= set(local), "a LAZY entry that no longer exists: remove it"


def test_package_inits_load_no_edges() -> None:
    """Importing a package runs its __init__: the desk's must not pull in Slack or the REST API."""
    loaded = {i.imported for i in IMPORTS if i.importer == "handoff.desk"}
    assert loaded == set()


@pytest.mark.parametrize(("source", "expected"), [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": {"c"}}, []),
])
def test_find_cycles(source: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert find_cycles(source) == expected

"""The desk's JavaScript passes ESLint and its Node unit tests (tests/web/js/*.test.js).

Both run with Node.js (18.18+) and npm: the pinned devDependencies of package.json /
package-lock.json are installed with `npm ci` into the git-ignored node_modules/, again only
when package-lock.json changed (its SHA-256 is kept in node_modules/.handoff-lock). Without
Node.js the tests fail, saying how to install it: they must not skip silently in CI.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "node_modules"
STAMP = MODULES / ".handoff-lock"


def _run(*args: str, timeout: float = 300, env: dict[str, str] | None = None,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _eslint(node: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return _run(node, str(MODULES / "eslint" / "bin" / "eslint.js"), *args, stdin=stdin)


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, with the lockfile's packages installed in node_modules/."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("Node.js 18.18+ and npm are needed for the desk's JavaScript tests: "
                    "install them (Debian: apt-get install nodejs npm; scripts/test does this)")
    lock = hashlib.sha256((ROOT / "package-lock.json").read_bytes()).hexdigest()
    if not (STAMP.is_file() and STAMP.read_text() == lock):
        done = _run(npm, "ci", "--no-audit", "--no-fund")
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
        STAMP.write_text(lock)
    return node


def test_javascript_passes_eslint(node: str) -> None:
    done = _eslint(node, "--max-warnings", "0", ".")
    assert done.returncode == 0, f"ESLint found problems (npx eslint .):\n{done.stdout}\n{done.stderr}"


def test_eslint_covers_the_desk_and_the_widget(node: str) -> None:
    done = _eslint(node, "--format", "json", ".")
    linted = {str(Path(entry["filePath"]).relative_to(ROOT)) for entry in json.loads(done.stdout)}
    folders = [ROOT / "handoff" / "web" / "static", ROOT / "handoff" / "channels" / "widget" / "static"]
    ours = {str(p.relative_to(ROOT)) for static in folders for p in static.rglob("*.js")}
    assert "handoff/channels/widget/static/widget.js" in ours
    assert ours and ours <= linted, f"not linted: {sorted(ours - linted)}"


def test_eslint_refuses_markup_sinks_in_the_desk(node: str) -> None:
    source = "export function show(el, text) { el.innerHTML = text; document.write(text); }\n"
    done = _eslint(node, "--format", "json", "--stdin", "--stdin-filename", "handoff/web/static/desk/example.js",
                   stdin=source)
    rules = [m["ruleId"] for m in json.loads(done.stdout)[0]["messages"]]
    assert done.returncode == 1 and rules == ["no-restricted-properties", "no-restricted-properties"]


def test_javascript_unit_tests_pass(node: str) -> None:
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "web" / "js").glob("*.test.js"))
    assert files
    done = _run(node, "--test", *files, timeout=120, env={"TZ": "UTC", "LANG": "en_US.UTF-8", "LC_ALL": "en_US.UTF-8"})
    assert done.returncode == 0, f"node --test failed:\n{done.stdout}\n{done.stderr}"
    assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout


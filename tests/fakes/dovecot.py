"""A private, real Dovecot IMAP server for tests.

`ensure_dovecot()` installs Debian's dovecot-imapd when the binary is missing (retrying while
another installer holds the dpkg lock). `Dovecot` writes a throw-away configuration into a
temporary directory — loopback listener on a free port, plaintext auth, one test user in
a passwd-file, Maildir storage — and runs `dovecot -F` in the foreground so it dies with the
tests. Without `tls` it speaks plain IMAP (`ssl = no`); given a `TestCA` it listens for implicit
TLS only (`inet_listener imaps`, `ssl = required`) with that CA's server certificate.
`append()` / `flags()` talk to it over IMAP (aioimaplib), like a mail delivery would.

Pytest fixtures: `dovecot` and `dovecot_tls` (one server per test module, mailbox emptied
between tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aioimaplib import IMAP4

from tests.fakes.tls import TestCA, test_ca  # noqa: F401 — `dovecot_tls` uses the fixture

DOVECOT = "/usr/sbin/dovecot"
USER = "support"
PASSWORD = "s3cret-test"

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = {ssl}
{ssl_files}disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {login_user}
default_login_user = {login_user}
first_valid_uid = 0
mail_location = maildir:{root}/mail/%u
mail_uid = {mail_uid}
mail_gid = {mail_gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def ensure_dovecot(attempts: int = 30) -> str:
    """The dovecot binary, installing Debian's dovecot-imapd first when it is missing."""
    if Path(DOVECOT).exists():
        return DOVECOT
    if os.geteuid() != 0:
        pytest.skip("dovecot-imapd is not installed and we are not root to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    updated = False
    for _ in range(attempts):
        if not updated:
            updated = subprocess.run(["apt-get", "update"], env=env, capture_output=True).returncode == 0
        done = subprocess.run(["apt-get", "install", "-y", "dovecot-imapd"], env=env, capture_output=True)
        if done.returncode == 0 and Path(DOVECOT).exists():
            return DOVECOT
        if b"lock" not in done.stderr.lower():
            raise RuntimeError("apt-get install dovecot-imapd failed: " + done.stderr.decode(errors="replace"))
        time.sleep(5)  # another installer holds the dpkg lock
    raise RuntimeError("could not install dovecot-imapd: dpkg stayed locked")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dovecot:
    """One private Dovecot instance with one user and a Maildir in a temporary directory."""

    def __init__(self, root: Path, port: int | None = None, tls: TestCA | None = None) -> None:
        self.root = root
        self.tls = tls
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.user = USER
        self.password = PASSWORD
        self._proc: subprocess.Popen[bytes] | None = None

    def _write_config(self) -> Path:
        if os.geteuid() == 0:
            # Dovecot refuses to drop privileges to root for login/mail processes.
            account = pwd.getpwnam("dovenull")
            login_user = "dovenull"
        else:
            account = pwd.getpwuid(os.geteuid())
            login_user = account.pw_name
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            for sub in ("mail", "home"):
                os.chown(self.root / sub, account.pw_uid, account.pw_gid)
        self.root.chmod(0o755)  # the auth process runs unprivileged and reads the passwd-file
        (self.root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        (self.root / "passwd").chmod(0o644)
        conf = self.root / "dovecot.conf"
        tls = self.tls
        conf.write_text(
            _CONFIG.format(
                root=self.root, login_user=login_user, mail_uid=account.pw_uid, mail_gid=account.pw_gid,
                imap_port=0 if tls else self.port, imaps_port=self.port if tls else 0,
                ssl="required" if tls else "no",
                ssl_files=f"ssl_cert = <{tls.cert_file}\nssl_key = <{tls.key_file}\n" if tls else "",
            )
        )
        return conf

    def start(self, timeout: float = 15.0) -> None:
        """Start Dovecot in the foreground and wait until it accepts connections."""
        conf = self._write_config()
        self._proc = subprocess.Popen(
            [ensure_dovecot(), "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL, stderr=open(self.root / "stderr.log", "ab"),
            start_new_session=True,  # its own process group, so stop() can end every child
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError("dovecot exited: " + self.log())
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeError("dovecot did not start listening: " + self.log())

    def stop(self, graceful: bool = True) -> None:
        """Stop the server and all its processes (connections drop, the Maildir stays).

        `graceful=False` kills the process group at once, like a crash.
        """
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        if graceful:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(3)
        # Dovecot's master can wait long for idling clients; its children share our process group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)

    def log(self) -> str:
        """Dovecot's own log, for failure messages."""
        parts = [p.read_text(errors="replace") for p in (self.root / "dovecot.log", self.root / "stderr.log") if p.exists()]
        return "\n".join(parts)[-4000:]

    def clear(self) -> None:
        """Empty the test user's mailbox (between tests)."""
        shutil.rmtree(self.root / "mail" / self.user, ignore_errors=True)

    @contextlib.asynccontextmanager
    async def connect(self, mailbox: str = "INBOX") -> AsyncIterator[IMAP4]:
        """A logged-in IMAP client with `mailbox` selected."""
        client = IMAP4(self.host, self.port, timeout=10,
                       ssl_context=self.tls.client_context() if self.tls else None)
        await client.wait_hello_from_server()
        response = await client.login(self.user, self.password)
        if response.result != "OK":
            raise RuntimeError(f"IMAP login failed: {response.lines}\n{self.log()}")
        response = await client.select(mailbox)
        if response.result != "OK":
            raise RuntimeError(f"SELECT {mailbox} failed: {response.lines}")
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                await client.logout()

    async def append(self, raw: bytes, flags: str | None = None) -> None:
        """Deliver a message into INBOX with IMAP APPEND (unseen unless flags say otherwise)."""
        async with self.connect() as client:
            response = await client.append(raw, mailbox="INBOX", flags=flags)
            if response.result != "OK":
                raise RuntimeError(f"APPEND failed: {response.lines}")

    async def flags(self, mailbox: str = "INBOX") -> dict[str, set[str]]:
        """Message-ID -> flags of every message in `mailbox` (messages flagged \\Deleted included)."""
        async with self.connect(mailbox) as client:
            response = await client.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        result: dict[str, set[str]] = {}
        lines = [bytes(line) for line in response.lines]
        for i, line in enumerate(lines):
            m = re.search(rb"FLAGS \(([^)]*)\)", line)
            if m is None or i + 1 >= len(lines):
                continue
            mid = re.search(rb"<[^>]+>", lines[i + 1])
            if mid:
                result[mid.group().decode()] = set(m.group(1).decode().split())
        return result

    def seen(self, flags: dict[str, set[str]], message_id: str) -> bool:
        """True when the message with that Message-ID carries \\Seen."""
        return "\\Seen" in flags.get(message_id, set())


@contextlib.contextmanager
def _running(tls: TestCA | None = None) -> Iterator[Dovecot]:
    ensure_dovecot()
    root = Path(tempfile.mkdtemp(prefix="dovecot-", dir="/tmp"))
    server = Dovecot(root, tls=tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def dovecot_server() -> Iterator[Dovecot]:
    """A running private Dovecot for the test module."""
    with _running() as server:
        yield server


@pytest.fixture(scope="module")
def dovecot_tls_server(test_ca: TestCA) -> Iterator[Dovecot]:  # noqa: F811
    """A running private Dovecot that only speaks implicit TLS, with `test_ca`'s certificate."""
    with _running(tls=test_ca) as server:
        yield server


@pytest.fixture
def dovecot(dovecot_server: Dovecot) -> Iterator[Dovecot]:
    """The module's Dovecot with an empty mailbox."""
    dovecot_server.clear()
    yield dovecot_server
    dovecot_server.clear()


@pytest.fixture
def dovecot_tls(dovecot_tls_server: Dovecot) -> Iterator[Dovecot]:
    """The module's TLS-only Dovecot with an empty mailbox."""
    dovecot_tls_server.clear()
    yield dovecot_tls_server
    dovecot_tls_server.clear()


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Poll an async or sync predicate until it is true (or fail the test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(interval)
    raise AssertionError("condition not met within %.1fs" % timeout)

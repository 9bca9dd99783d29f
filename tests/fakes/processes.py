"""Real server processes for the fault suite and the instances benchmark: a private PostgreSQL,
a private Redis and `handoff serve` instances — never the machine's own servers.

`PostgresServer` runs `initdb` into a temporary directory (as the `postgres` user when we are
root: PostgreSQL refuses to run as root) and `pg_ctl start`/`stop -m fast` on a free loopback
port with trust authentication; `create_database()` gives each run an empty database.
`RedisServer` runs `redis-server` in the foreground without persistence on a free port.
Both keep their port across `stop()`/`start()`, so clients reconnect to the same address.
`HandoffInstance` runs `python -m handoff.cli serve` from this checkout with an environment of
HANDOFF_* variables, its output in a log file; `kill()` is a SIGKILL (a crash), `stop()` a
SIGTERM. `wait_healthy()` polls `/healthz` until it answers 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import asyncpg

from tests.fakes.dovecot import free_port



def _pg_bin() -> Path:
    """Where initdb and pg_ctl are: $HANDOFF_PG_BIN, the PATH, else Debian's newest /usr/lib/postgresql/*/bin."""
    if os.environ.get("HANDOFF_PG_BIN"):
        return Path(os.environ["HANDOFF_PG_BIN"])
    found = shutil.which("initdb", path=os.environ.get("PATH", "") + ":/usr/local/bin")
    if found:
        return Path(found).parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return debian[-1].parent if debian else Path("/usr/local/bin")


PG_BIN = _pg_bin()
REDIS_SERVER = os.environ.get("HANDOFF_REDIS_SERVER", shutil.which("redis-server") or "/usr/bin/redis-server")
REPO = Path(__file__).resolve().parents[2]
_CONFIG_PREFIXES = ("HANDOFF_", "OPENAI_", "TWILIO_", "META_", "MESSENGER_", "INSTAGRAM_", "SLACK_", "SMTP_",
                    "IMAP_", "TELEGRAM_")


def _wait_port(host: str, port: int, timeout: float, alive: object = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if isinstance(alive, subprocess.Popen) and alive.poll() is not None:
            raise RuntimeError(f"the process listening on {port} exited with {alive.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on {host}:{port} within {timeout:.0f}s")


class PostgresServer:
    """A private PostgreSQL cluster in a temporary directory, on its own port."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="handoff-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.port = free_port()
        self.host = "127.0.0.1"
        self._user = "postgres" if os.geteuid() == 0 else None  # initdb and postgres refuse root

    @property
    def admin_url(self) -> str:
        """The URL of the cluster's `postgres` database (superuser `postgres`, trust auth)."""
        return f"postgres://postgres@{self.host}:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        done = subprocess.run([str(PG_BIN / args[0]), *args[1:]], user=self._user, capture_output=True,
                              cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.decode(errors='replace')}\n{self.log()}")

    def init(self) -> PostgresServer:
        """initdb the cluster (fsync off: these runs need no crash durability, the machine is shared)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self._user:
            account = pwd.getpwnam(self._user)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-instructions")
        return self

    def start(self, timeout: float = 30.0) -> None:
        """Start the cluster and wait until it accepts connections."""
        options = (f"-p {self.port} -k {self.root} -c listen_addresses={self.host} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "postgres.log"), "-o", options,
                  "-w", "-t", str(int(timeout)), "start")

    @property
    def running(self) -> bool:
        """True while the cluster's postmaster runs (`pg_ctl status`)."""
        return subprocess.run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status"], user=self._user,
                              capture_output=True, cwd=self.root).returncode == 0

    def stop(self) -> None:
        """`pg_ctl stop -m fast`: connections are cut, the cluster shuts down cleanly."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def log(self) -> str:
        """The tail of the server's log, for failure messages."""
        path = self.root / "postgres.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    async def create_database(self) -> str:
        """A new empty database on this cluster; returns its URL."""
        name = f"handoff_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(self.admin_url.replace("postgres://", "postgresql://", 1))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"

    def destroy(self) -> None:
        """Stop the cluster and remove its directory."""
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """A private redis-server without persistence, on its own port."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="handoff-redis-", dir="/tmp"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start redis-server in the foreground and wait until it listens."""
        self._proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=open(self.root / "redis.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        _wait_port("127.0.0.1", self.port, timeout, self._proc)

    @property
    def running(self) -> bool:
        """True while the server process lives."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s); its data is gone with it."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def destroy(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class HandoffInstance:
    """One `handoff serve` process of this checkout, configured by `env` (HANDOFF_* variables)."""

    def __init__(self, name: str, env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "HANDOFF_HOST": "127.0.0.1", "HANDOFF_PORT": str(self.port)}
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process (it migrates, then serves); returns at once: see `wait_healthy`.

        Only `env` configures it: the caller's provider and HANDOFF_* variables are left out."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(_CONFIG_PREFIXES)}
        env = {**inherited, **self.env, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "handoff.cli", "serve"], env=env, cwd=REPO,
                                     stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)

    async def wait_healthy(self, timeout: float = 60.0) -> None:
        """Poll `/healthz` until it answers 200; RuntimeError when the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    code = None if self.proc is None else self.proc.returncode
                    raise RuntimeError(f"{self.name} exited with {code}:\n{self.log()}")
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with session.get(self.url + "/healthz") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} was not healthy within {timeout:.0f}s:\n{self.log()}")

    @property
    def running(self) -> bool:
        """True while the process lives."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, like a crash or an OOM kill: nothing is released."""
        if self.running:
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait up to `timeout` seconds (then SIGKILL); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def log(self, size: int = 4000) -> str:
        """The tail of the instance's output without its access log, for failure messages."""
        if not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(line for line in lines if " aiohttp.access: " not in line)[-size:]


class Cluster:
    """`size` instances sharing one database and one Redis, with the api channel on (its callbacks
    to `callback_url`) and the offline bot; `env` adds or overrides HANDOFF_* variables."""

    def __init__(self, database_url: str, redis_url: str, callback_url: str, secret: str, size: int,
                 log_dir: Path, env: Mapping[str, str] | None = None) -> None:
        shared = {"HANDOFF_DATABASE_URL": database_url, "HANDOFF_REDIS_URL": redis_url,
                  "HANDOFF_API_SECRET": secret, "HANDOFF_API_CALLBACK_URL": callback_url,
                  "HANDOFF_SECRET_KEY": uuid.uuid4().hex, "HANDOFF_MEDIA_DIR": str(log_dir / "media"),
                  **(env or {})}
        self.database_url = database_url
        self.instances = [HandoffInstance(f"instance-{i}", shared, log_dir) for i in range(size)]

    @property
    def urls(self) -> list[str]:
        """The instances' base URLs."""
        return [instance.url for instance in self.instances]

    async def start(self, timeout: float = 60.0) -> None:
        """Start every instance at the same moment and wait until all are healthy."""
        for instance in self.instances:
            instance.start()
        await asyncio.gather(*(instance.wait_healthy(timeout) for instance in self.instances))

    async def restart(self, index: int, timeout: float = 60.0) -> None:
        """Start instance `index` again (after a kill or a stop) on the same port."""
        self.instances[index].start()
        await self.instances[index].wait_healthy(timeout)

    def stop(self) -> list[int | None]:
        """SIGTERM every instance; returns their exit codes."""
        for instance in self.instances:
            if instance.running:
                assert instance.proc is not None
                instance.proc.terminate()
        return [instance.stop() for instance in self.instances]

    def logs(self) -> str:
        """The tails of every instance's output."""
        return "\n".join(f"--- {i.name}\n{i.log()}" for i in self.instances)

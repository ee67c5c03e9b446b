"""The chaos run's own PostgreSQL, Redis and livespace nodes, on free ports.

Nothing here touches the machine's shared services: PostgreSQL is a fresh ``initdb`` in
a temporary directory, run as the ``postgres`` user; Redis is a ``redis-server`` with no
persistence (a restart comes back empty).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PG_BIN = Path("/usr/lib/postgresql/15/bin")
LIVESPACE = str(Path(sys.executable).parent / "livespace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(ready: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout} s")
        time.sleep(0.1)


class Postgres:
    """A PostgreSQL cluster of this run's own: ``initdb`` as ``postgres``, trust auth, in
    a directory of its own under the system temp dir (the ``postgres`` user must reach
    it; a test's tmp_path is private to root)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="livespace-chaos-pg-"))
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *argv: str) -> list[str]:
        return list(argv) if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *argv]

    def init(self) -> Postgres:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL 15 binaries not found in {PG_BIN} "
                               "(apt-get install postgresql-15)")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        subprocess.run(self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.dir / "data"),
                                         "-A", "trust", "-U", "postgres", "--no-sync"),
                       check=True, capture_output=True)
        return self.start()

    def start(self) -> Postgres:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=200")
        subprocess.run(self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"),
                                         "-o", options, "-l", str(self.dir / "log"), "-w",
                                         "start"), check=True, capture_output=True)
        return self

    def stop(self, mode: str = "immediate") -> None:
        subprocess.run(self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"),
                                         "-m", mode, "-w", "stop"), capture_output=True)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    """A ``redis-server`` of this run's own, without persistence."""

    def __init__(self, root: Path) -> None:
        self.dir = root
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Redis:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def pong() -> bool:
            done = subprocess.run(["redis-cli", "-p", str(self.port), "ping"],
                                  capture_output=True, text=True)
            return done.stdout.strip() == "PONG"

        _wait(pong, "redis-server", 10)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class Node:
    """One ``livespace serve`` process; keeps its port (and node id) across restarts."""

    def __init__(self, root: Path, env: dict[str, str], index: int) -> None:
        self.port = free_port()
        self.name = f"chaos-{index}"
        self.log = root / f"{self.name}.log"
        self.env = {**os.environ, **env, "LIVESPACE_NODE_ID": self.name,
                    "LIVESPACE_DATA_DIR": str(root / self.name)}
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def up(self) -> bool:
        return self.proc is not None and not self.paused

    def start(self, timeout: float = 60.0) -> Node:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [LIVESPACE, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)

        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.name} exited: "
                                   f"{self.log.read_text()[-2000:]}")
            try:
                return httpx.get(f"{self.http}/ws/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(healthy, f"node {self.name}", timeout)
        return self

    def kill(self) -> None:
        if self.proc is not None:
            if self.paused:
                self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
        self.proc, self.paused = None, False

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def drain(self, timeout: float = 20.0) -> None:
        """SIGTERM: sockets close with 1012, the process exits."""
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

"""The TypeScript SDK's suite (clients/js, `npm test`) against real servers on each engine.

The JS tests start, kill and restart `livespace serve` themselves (test/integration/
server.ts); this test tells them which binary and which database: on SQLite each of their
servers makes its own file, on PostgreSQL they share one fresh database made here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[2] / "clients" / "js"
LIVESPACE = str(Path(sys.executable).parent / "livespace")

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # starts processes itself


@pytest.fixture(params=["sqlite", "postgres"])
def js_env(request: pytest.FixtureRequest) -> dict[str, str]:
    env = {**os.environ, "LIVESPACE_BIN": LIVESPACE}
    env.pop("LIVESPACE_TEST_DATABASE_URL", None)
    if request.param == "postgres":
        env["LIVESPACE_TEST_DATABASE_URL"] = str(request.getfixturevalue("pg_url"))
    return env


@pytest.mark.timeout(600)
def test_typescript_sdk(js_env: dict[str, str]) -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm not found: install Node.js >= 20 and npm (apt-get install nodejs npm), "
                    "then run make install", pytrace=False)
    if not (JS / "node_modules" / ".installed").exists():
        pytest.fail("clients/js has no node_modules: run make install", pytrace=False)
    try:
        proc = subprocess.run([npm, "test", "--silent"], cwd=JS, env=js_env, capture_output=True,
                              text=True, timeout=540, check=False)
    except subprocess.TimeoutExpired as late:
        out = late.stdout.decode() if isinstance(late.stdout, bytes) else late.stdout or ""
        pytest.fail(f"npm test still running after 540 s:\n{out[-12000:]}", pytrace=False)
    assert proc.returncode == 0, f"npm test failed:\n{proc.stdout[-12000:]}\n{proc.stderr[-4000:]}"

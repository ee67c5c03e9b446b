"""Write requirements.lock: every package `pip install -e '.[dev]'` resolves to, pinned.

``make lock`` runs it after a change of pyproject.toml's ranges; ``make install`` installs
with it as a constraints file, so that every clone gets the versions tested last. pip
resolves the newest versions the ranges allow (``--dry-run --report``: nothing is
installed) for this interpreter and platform; a package only another platform needs is
not pinned and resolves freely there, and so does one added to pyproject.toml before
the lock is written again.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
HEADER = """\
# Written by `make lock` (tools/lock.py) from pyproject.toml; do not edit by hand.
# Python {python} on {platform}. `make install` installs with it as constraints.
"""


def resolve() -> dict[str, str]:
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
         "--report", "-", "-e", f"{ROOT}[dev]"],
        check=True, capture_output=True, text=True,
    )
    report = json.loads(done.stdout)
    pins: dict[str, str] = {}
    for item in report["install"]:
        meta = item["metadata"]
        if meta["name"].lower() != "livespace":
            pins[re.sub(r"[-_.]+", "-", meta["name"]).lower()] = meta["version"]
    return pins


def main() -> int:
    pins = resolve()
    lines = [HEADER.format(python=".".join(map(str, sys.version_info[:3])),
                           platform=sys.platform)]
    lines += [f"{name}=={version}\n" for name, version in sorted(pins.items())]
    LOCK.write_text("".join(lines))
    print(f"{LOCK.name}: {len(pins)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())

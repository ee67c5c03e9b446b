"""Print pip constraints pinning every runtime dependency at its lower bound.

``make test-lowest`` installs with them into ``.venv-lowest`` and runs the fast tier,
so that the ranges in pyproject.toml are tested at both ends (the upper end is
requirements.lock). A bound that cannot be installed or fails there gets raised.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lower_bounds() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bounds: dict[str, str] = {}
    for requirement in project["dependencies"]:
        found = re.match(r"\s*([A-Za-z0-9_.-]+)(?:\[[^]]*\])?\s*[^;]*?>=\s*([0-9][^,;\s]*)",
                         requirement)
        if found:
            bounds[found.group(1).lower()] = found.group(2)
    return bounds


def main() -> int:
    for name, version in sorted(lower_bounds().items()):
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

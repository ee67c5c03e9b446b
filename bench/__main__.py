"""``python -m bench``: the same as ``livespace bench`` from a source checkout."""

from __future__ import annotations

import sys

from bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

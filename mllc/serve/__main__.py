"""``python -m mllc.serve ...``: the same as ``mllc serve ...``."""

from __future__ import annotations

import sys

from mllc.serve.server import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``python -m instrument``: the ``gesturegan`` command."""

import sys

from .main import main

if __name__ == "__main__":  # not when a tool imports every module (tests/test_layout.py)
    sys.exit(main())

"""Entry point for `python -m lm`."""

import sys

from lm.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""python -m conformance: the same subcommands as the console script xent-conformance."""
import sys

from conformance.cli import main

if __name__ == "__main__":
    sys.exit(main())

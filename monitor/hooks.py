"""`python -m monitor.hooks`: the Claude Code hook entry point (see monitor.capture.claude.hook)."""

import sys

from monitor.capture.claude.hook import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

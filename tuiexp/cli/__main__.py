"""`python -m tuiexp.cli`: the same as the `tuiexp` command."""

from . import main

if __name__ == "__main__":
    raise SystemExit(main())

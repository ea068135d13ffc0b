"""`python -m tuiexp`: the same as the `tuiexp` command."""

from .cli import main

raise SystemExit(main())

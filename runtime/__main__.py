"""`python -m runtime` is the `space-dev` command."""

from runtime.cli import main

raise SystemExit(main())

"""`python -m runtime` is the `space-dev` command."""

from runtime.cli.main import main

raise SystemExit(main())

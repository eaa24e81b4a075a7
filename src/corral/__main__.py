"""`python -m corral`: the same entry point as the `corral` command."""

from corral.boot import main

raise SystemExit(main())

"""``python -m obshub`` runs the command line."""

from obshub.cli import main

raise SystemExit(main())

"""``python -m obshub`` runs the command line."""

from obshub._cli import main

raise SystemExit(main())

"""``python -m cv_bench`` runs the ``cv-bench`` CLI."""

from .cli import main

raise SystemExit(main())

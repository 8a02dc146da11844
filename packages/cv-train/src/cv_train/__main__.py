"""``python -m cv_train`` = ``cv-train``."""

import sys

from .cli import main

sys.exit(main())

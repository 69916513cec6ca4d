"""``python -m mageflow ...``; see :mod:`mageflow.cli`."""

import sys

from mageflow.cli import main

sys.exit(main())

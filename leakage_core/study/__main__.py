"""``python -m leakage_core.study``: compute the study's grids into ``results/`` (see :func:`run_study`)."""

import sys

from .run import main

sys.exit(main())

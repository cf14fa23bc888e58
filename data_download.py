#!/usr/bin/env python3
"""Download the real WEAR / Wetlab data and the four public excerpts: ``python data_download.py --help``.

A thin wrapper around :func:`leakage_core.download.main` (all logic and its tests live there).
Licence of the data: CC BY-NC-SA 4.0 (see README, "Data and licences").
"""

import sys

from leakage_core.download import main

if __name__ == "__main__":
    sys.exit(main())

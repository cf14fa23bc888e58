"""Write a copy of the book's _config.yml with notebook execution switched off.

`make test` validates the committed notebook outputs with strict nbval first, then
builds the book from exactly those outputs (no re-execution) with warnings as errors.
"""
import sys

import yaml

src, dst = sys.argv[1], sys.argv[2]
with open(src, encoding="utf-8") as fh:
    config = yaml.safe_load(fh)
config.setdefault("execute", {})["execute_notebooks"] = "off"
with open(dst, "w", encoding="utf-8") as fh:
    yaml.safe_dump(config, fh, sort_keys=False)

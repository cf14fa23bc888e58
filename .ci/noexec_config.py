"""Write a copy of the book's _config.yml with notebook execution switched off.

`make test` validates the committed notebook outputs with strict nbval first, then
builds the book from exactly those outputs (no re-execution) with warnings as errors.
jupyter-book resolves `sphinx.local_extensions` paths against the folder of the config
file, so they are rewritten relative to the copy's folder.
"""

import os
import sys

import yaml

src, dst = sys.argv[1], sys.argv[2]
with open(src, encoding="utf-8") as fh:
    config = yaml.safe_load(fh)
config.setdefault("execute", {})["execute_notebooks"] = "off"
src_dir, dst_dir = os.path.dirname(os.path.abspath(src)), os.path.dirname(os.path.abspath(dst))
local = config.get("sphinx", {}).get("local_extensions") or {}
for name, path in local.items():
    local[name] = os.path.relpath(os.path.join(src_dir, path), dst_dir)
with open(dst, "w", encoding="utf-8") as fh:
    yaml.safe_dump(config, fh, sort_keys=False)

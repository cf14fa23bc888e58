"""Where expensive results are kept, and how they are written so that an interruption never corrupts them.

Contract: :func:`cache_root` is the one cache folder (``$LEAKAGE_HAR_CACHE`` if set, otherwise
``$XDG_CACHE_HOME/leakage_har``, by default ``~/.cache/leakage_har``) for the trained LOSO checkpoints and the
grid results. Every file is written to a temporary name in the same folder and then renamed
(:func:`atomic_write`): a reader sees the old file, the new file, or no file — never half of one; JSON files
carry a checksum that :func:`read_json_checked` verifies. Reference: :func:`os.replace`, atomic on POSIX
(``rename(2)``) and on Windows file systems.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

#: environment variable that overrides the cache folder
CACHE_ENV = "LEAKAGE_HAR_CACHE"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache_dir`` if given, else ``$LEAKAGE_HAR_CACHE``, else the user's cache dir.

    The folder is not created here (no work at import or lookup).
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "leakage_har"


def stable_hash(obj: Any, length: int = 16) -> str:
    """A short hex digest of a JSON-serialisable object, independent of dict order and Python run.

    Used as cache key (never Python's ``hash``, which is salted per process).
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Write ``path`` through ``write(tmp_path)`` to a temporary sibling, then rename it into place.

    If ``write`` raises (or the process is killed), the temporary file is
    removed (or left under a ``.tmp`` name that no reader looks at) and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` as JSON with an embedded checksum, atomically.

    :func:`read_json_checked` recomputes the checksum, so a file damaged after writing (a disk error,
    a hand edit, a truncated copy) is detected instead of silently used.
    """
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    doc = json.dumps(
        {"sha256": hashlib.sha256(body.encode()).hexdigest(), "payload": payload}, sort_keys=True, separators=(",", ":")
    )
    return atomic_write(path, lambda p: p.write_text(doc))


class CorruptCacheError(ValueError):
    """A cache file exists but cannot be trusted (unreadable, truncated or checksum mismatch)."""


def read_json_checked(path: str | os.PathLike) -> dict:
    """Read a file written by :func:`write_json_atomic`; raise :class:`CorruptCacheError` if damaged."""
    try:
        doc = json.loads(Path(path).read_text())
        payload = doc["payload"]
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        ok = hashlib.sha256(body.encode()).hexdigest() == doc["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CorruptCacheError(f"cache file {path} is unreadable ({err}); it will be recomputed.") from err
    if not ok:
        raise CorruptCacheError(f"cache file {path} fails its checksum; it will be recomputed.")
    return payload

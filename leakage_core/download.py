"""Download the real data (WEAR, Wetlab, the four public excerpts) into the folder the loaders read.

``python data_download.py {wear,wetlab,excerpts,all}`` is a thin wrapper around :func:`main`. Files are
fetched with pooch (retries, progress bar, archive processors) into ``<dest>/.downloads/``, verified by sha256
against the registry ``leakage_core/data_registry.txt``, checked by the loaders of :mod:`leakage_core.data`
(columns, label strings, subject count) and only then renamed into the layout those loaders read::

    <dest>/wear/sbj_<k>.csv, <dest>/wear/annotations/*.json
    <dest>/wetlab/sbj_<k>.csv, <dest>/wetlab/annotations/*.json
    <dest>/excerpts/{wear_0_10,wear_10_20,wetlab_0_10,wetlab_10_20}.csv

``<dest>`` defaults to :func:`leakage_core.data.data_dir` (``$LEAKAGE_HAR_DATA``). Archives are
unpacked into a temporary folder inside ``<dest>`` (so every move is a rename on one file system)
and removed afterwards: the registry holds the sha256 of every unpacked file, so neither re-runs
nor ``--check`` need the archive, and keeping it would double the disk space for a file nothing
reads. Nothing partial is ever left under a name a loader reads: a failure or Ctrl-C removes the
temporary download, the unpacked folder and the staged copy.

The registry path can be overridden (argument ``registry`` or ``$LEAKAGE_HAR_REGISTRY``), and so can
the download addresses (argument ``mirror`` or ``$LEAKAGE_HAR_MIRROR``: a base URL under which every
registry name is served, e.g. ``<mirror>/excerpts/wear_0_10.csv``). Importing this module does no
work: pooch, requests and pandas are imported when a function runs.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence, TextIO

from .cache import atomic_write

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

    from .data import HARDataset

#: environment variable that overrides the registry file
REGISTRY_ENV = "LEAKAGE_HAR_REGISTRY"
#: environment variable with a base URL that replaces every source URL (``<mirror>/<name>``)
MIRROR_ENV = "LEAKAGE_HAR_MIRROR"
#: the registry shipped with the package
DEFAULT_REGISTRY = Path(__file__).with_name("data_registry.txt")
#: what each command-line target installs
DOWNLOAD_TARGETS: dict[str, tuple[str, ...]] = {
    "wear": ("wear",),
    "wetlab": ("wetlab",),
    "excerpts": ("excerpts",),
    "all": ("wear", "wetlab", "excerpts"),
}
#: the archives holding WEAR and Wetlab, in the order they are tried
BUNDLES: tuple[str, ...] = ("bundle-paper.zip", "bundle-fallback.zip")
WEAR_PAGE = "https://mariusbock.github.io/wear"
EXCERPT_PAGE = "https://github.com/mariusbock/video_assisted_annotation/tree/main/sensor_data"
DOWNLOADS = ".downloads"
_TEMP_PREFIXES = (".unpack-", ".staged-", ".replaced-")


class DownloadError(Exception):
    """A download, a verification or an installation failed; ``str(err)`` is the full message for the reader.

    The message says what failed and the manual steps.
    """


class _SourceFailed(Exception):
    """One source failed (the next one may still work)."""


class _Fatal(Exception):
    """A local problem (full disk, no permission): trying another source would not help."""


# --------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class RegistryEntry:
    """One registry line: ``name``, ``sha256`` (``None`` if unknown) and ``source``.

    ``source`` is a URL, or ``<archive>!<member>`` for a file unpacked
    from an archive.
    """

    name: str
    sha256: str | None
    source: str

    @property
    def archive(self) -> str | None:
        """The archive a member comes from (``None`` for a downloaded file)."""
        return self.source.split("!", 1)[0] if "://" not in self.source else None


class Registry:
    """The registry file: parsed entries plus the original lines, so that recording keeps comments.

    Parameters
    ----------
    path : path
        The registry file (see :func:`registry_path`).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise DownloadError(
                f"data_download.py: cannot read the registry {self.path} ({err.strerror}); "
                f"reinstall the package or point ${REGISTRY_ENV} at a registry file."
            ) from None
        self.entries: list[RegistryEntry] = []
        self._line_of: dict[tuple[str, str | None], int] = {}
        for i, line in enumerate(self.lines):
            text = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
            if not text:
                continue
            parts = text.split()
            if len(parts) != 3 or not (parts[1] == "unknown" or _is_sha256(parts[1])):
                raise DownloadError(
                    f"data_download.py: registry {self.path}, line {i + 1} is not "
                    f"'<name> <sha256|unknown> <source>': {line!r}"
                )
            entry = RegistryEntry(parts[0], None if parts[1] == "unknown" else parts[1].lower(), parts[2])
            self.entries.append(entry)
            self._line_of[(entry.name, entry.archive)] = i

    def get(self, name: str) -> RegistryEntry:
        """The downloadable entry ``name`` (an archive or an excerpt)."""
        for entry in self.entries:
            if entry.name == name and entry.archive is None:
                return entry
        raise DownloadError(
            f"data_download.py: {name} is not in the registry {self.path}; restore the "
            "registry shipped with leakage_core (git checkout leakage_core/data_registry.txt)."
        )

    def members(self, dataset: str, archive: str | None = None) -> list[RegistryEntry]:
        """Entries of files unpacked into ``<dest>/<dataset>/`` (optionally from one archive only)."""
        return [
            e
            for e in self.entries
            if e.archive is not None and e.name.startswith(dataset + "/") and (archive is None or e.archive == archive)
        ]

    def set(self, name: str, sha256: str, source: str) -> bool:
        """Record ``sha256`` for ``name`` (replacing the line with the same name and archive); ``True`` if changed."""
        new = RegistryEntry(name, sha256, source)
        key = (name, new.archive)
        line = f"{name}  {sha256}  {source}"
        if key in self._line_of:
            i = self._line_of[key]
            old = next(e for e in self.entries if (e.name, e.archive) == key)
            if old.sha256 == sha256 and old.source == source:
                return False
            self.entries[self.entries.index(old)] = new
            self.lines[i] = line
        else:
            self.entries.append(new)
            self.lines.append(line)
            self._line_of[key] = len(self.lines) - 1
        return True

    def save(self) -> None:
        """Write the registry back (atomically: write a temporary sibling, then rename)."""
        text = "\n".join(self.lines) + "\n"
        atomic_write(self.path, lambda p: p.write_text(text, encoding="utf-8"))


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)


def registry_path(registry: str | os.PathLike | None = None) -> Path:
    """The registry file: ``registry`` if given, else ``$LEAKAGE_HAR_REGISTRY``, else the packaged one."""
    if registry is not None:
        return Path(registry)
    if os.environ.get(REGISTRY_ENV):
        return Path(os.environ[REGISTRY_ENV])
    return DEFAULT_REGISTRY


def sha256_of(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------- options
@dataclass
class _Options:
    dest: Path
    registry: Registry
    mirror: str | None
    force: bool
    record: bool
    expected: dict[str, int]
    retries: int
    timeout: float
    out: TextIO
    dest_given: bool

    def url(self, entry: RegistryEntry) -> str:
        return f"{self.mirror.rstrip('/')}/{entry.name}" if self.mirror else entry.source

    def check_cmd(self, target: str) -> str:
        dest = f" --dest {self.dest}" if self.dest_given else ""
        return f"python data_download.py {target} --check{dest}"

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def _options(dest, registry, mirror, force, record, expected_subjects, retries, timeout, out) -> _Options:
    from .data import PROFILES, data_dir

    expected = {name: profile.n_subjects for name, profile in PROFILES.items()}  # the release the paper used
    return _Options(
        dest=data_dir(dest),
        registry=Registry(registry_path(registry)),
        mirror=mirror if mirror is not None else (os.environ.get(MIRROR_ENV) or None),
        force=force,
        record=record,
        expected={**expected, **(expected_subjects or {})},
        retries=retries,
        timeout=timeout,
        out=out if out is not None else sys.stdout,
        dest_given=dest is not None,
    )


# --------------------------------------------------------------------------------------- messages
def _reason(err: BaseException) -> str:
    """One line saying what went wrong; raises :class:`_Fatal` for local problems."""
    import requests

    if isinstance(err, requests.exceptions.HTTPError) and err.response is not None:
        from http import HTTPStatus

        code = err.response.status_code
        phrase = HTTPStatus(code).phrase if code in HTTPStatus._value2member_map_ else err.response.reason
        return f"the server answered HTTP {code} {phrase} (the file moved or was removed?)"
    if isinstance(err, requests.exceptions.Timeout):
        return "the server did not answer in time (slow or blocked network?)"
    if isinstance(err, requests.exceptions.ConnectionError):
        return "cannot connect to the server (offline, blocked by a firewall, or the address moved?)"
    if isinstance(err, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return "the download broke off before the end (truncated); the partial file was deleted"
    if isinstance(err, requests.exceptions.RequestException):
        return f"the download failed ({type(err).__name__}: {err})"
    if isinstance(err, ValueError) and "does not match the known hash" in str(err):
        text = str(err)
        expected = (
            text.split("expected ", 1)[1].split(" ", 1)[0].removeprefix("sha256:") if "expected " in text else "?"
        )
        got = text.split("but got ", 1)[1].split(".", 1)[0] if "but got " in text else "?"
        return (
            f"checksum mismatch: sha256 {got}, the registry says {expected}; the downloaded file was deleted "
            "(a damaged download, or the publisher changed the file: a maintainer checks it and runs --record)"
        )
    if isinstance(err, OSError):
        if err.errno == errno.ENOSPC:
            raise _Fatal(
                "the disk is full; nothing partial was kept. Free space (an archive needs about twice its "
                "size while it is unpacked) or choose another folder with --dest"
            )
        raise _Fatal(
            f"cannot write: {err.strerror or err} ({err.filename or 'file system'}); "
            "choose a writable folder with --dest or $LEAKAGE_HAR_DATA"
        )
    import zlib

    if isinstance(err, (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error)):
        return f"the archive is damaged ({err}); it was deleted"
    return f"{err}"


def _manual_steps(kind: str | Sequence[str], opts: _Options) -> str:
    """The numbered manual steps for ``kind`` (``"excerpts"``, a dataset or several datasets)."""
    from .data import EXCERPT_FILES

    if kind == "excerpts":
        names = [n for pair in EXCERPT_FILES.values() for n in pair]
        raw = "\n".join(f"       {opts.registry.get('excerpts/' + n).source}" for n in names)
        return (
            f"Manual steps:\n  1. Open {EXCERPT_PAGE} and download {', '.join(names)}:\n{raw}\n"
            f"  2. Put them, unchanged, into {opts.dest / 'excerpts'}/\n"
            f"     (offline, from a clone of the book: gunzip -k chapters/data/real_excerpts/*.csv.gz and move"
            f" the\n"
            f"     four .csv files there; they are the same files)\n"
            f"  3. Run: {opts.check_cmd('excerpts')}"
        )
    pages = [
        opts.registry.get(b).source.removesuffix("/download")
        for b in BUNDLES
        if any(e.name == b for e in opts.registry.entries)
    ]
    other = f" (or the fallback {', '.join(pages[1:])})" if len(pages) > 1 else ""
    kinds = [kind] if isinstance(kind, str) else list(kind)
    copy = "; ".join(
        f"copy data/{k}/raw/inertial/sbj_<k>.csv (some releases: data/{k}/raw/inertial/50hz/) into "
        f"{opts.dest / k}/ and data/{k}/annotations/*.json into {opts.dest / k / 'annotations'}/"
        for k in kinds
    )
    checks = " and ".join(opts.check_cmd(k) for k in kinds)
    return (
        f"Manual steps:\n  1. Open {pages[0] if pages else WEAR_PAGE} in a browser{other}; the dataset page is "
        f"{WEAR_PAGE}. Download the whole share as one zip archive.\n"
        f"  2. Unpack it; {copy}\n"
        f"  3. Run: {checks}"
    )


def _fail(
    what: str, reasons: Sequence[str], kind: str | Sequence[str], opts: _Options, note: str = ""
) -> DownloadError:
    lines = [f"data_download.py: could not get {what}."]
    lines += [f"  - {r}" for r in reasons]
    lines.append(note or f"Nothing partial was left in {opts.dest}.")
    lines.append(_manual_steps(kind, opts))
    return DownloadError("\n".join(lines))


# --------------------------------------------------------------------------------------- fetching
@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    """Silence pooch's INFO log lines (this module prints its own progress lines)."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _fetch(name: str, url: str, known: str | None, opts: _Options) -> Path:
    """Download ``url`` to ``<dest>/.downloads/<basename>`` with pooch (hash-checked if ``known``)."""
    import pooch

    folder = opts.dest / DOWNLOADS
    fname = Path(name).name
    if opts.force or known is None:  # an unverifiable leftover is never reused
        (folder / fname).unlink(missing_ok=True)
    store = pooch.create(
        path=folder,
        base_url="",
        registry={fname: f"sha256:{known}" if known else None},
        urls={fname: url},
        retry_if_failed=opts.retries,
    )
    downloader = pooch.HTTPDownloader(
        progressbar=bool(getattr(sys.stderr, "isatty", lambda: False)()), timeout=opts.timeout
    )
    with _quiet_pooch():
        return Path(store.fetch(fname, downloader=downloader))


def _cleanup(dest: Path) -> None:
    """Remove leftovers of an interrupted run (temporary folders, the empty download cache)."""
    if not dest.is_dir():
        return
    for p in dest.iterdir():
        if p.name.startswith(_TEMP_PREFIXES) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
    downloads = dest / DOWNLOADS
    if downloads.is_dir():
        for p in downloads.iterdir():
            if p.name.startswith("tmp"):  # pooch's temporary names
                p.unlink(missing_ok=True)
        try:
            downloads.rmdir()
        except OSError:
            pass


def _record(opts: _Options, changes: list[tuple[str, str, str]]) -> None:
    """Write recorded hashes into the registry; if it is read-only, print the lines to add."""
    changed = [c for c in changes if opts.registry.set(*c)]
    if not changed:
        return
    try:
        opts.registry.save()
    except OSError as err:
        lines = "\n".join(f"  {n}  {h}  {s}" for n, h, s in changed)
        print(
            f"data_download.py: note: cannot write the registry {opts.registry.path} ({err.strerror}); "
            f"add these lines to it by hand:\n{lines}",
            file=sys.stderr,
        )
        return
    top = [c for c in changed if "://" in c[2]]
    for name, sha, _ in top:
        opts.say(f"recorded sha256 of {name}: {sha}")
    opts.say(f"recorded {len(changed)} sha256 value(s) in {opts.registry.path} (a maintainer commits this file)")


# --------------------------------------------------------------------------------------- excerpts
def _install_excerpts(opts: _Options) -> None:
    from .data import EXCERPT_FILES, read_excerpt_csv

    folder = opts.dest / "excerpts"
    done: list[str] = []
    for dataset, names in EXCERPT_FILES.items():
        for fname in names:
            name = f"excerpts/{fname}"
            entry = opts.registry.get(name)
            target = folder / fname
            if target.is_file() and not opts.force:
                have = sha256_of(target)
                if entry.sha256 == have:
                    opts.say(f"{name}: present and verified (sha256 {have[:12]}...), not downloaded again")
                    continue
                if entry.sha256 is None and not opts.record:
                    opts.say(f"{name}: present, no sha256 in the registry yet (checked by the loader below)")
                    continue
            url = opts.url(entry)
            opts.say(f"{name}: downloading {url}")
            tmp: Path | None = None
            try:
                try:
                    tmp = _fetch(name, url, None if opts.record else entry.sha256, opts)
                    read_excerpt_csv(tmp, dataset)  # columns, numbers, label strings
                    sha = sha256_of(tmp)
                    folder.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, target)
                    tmp = None
                except Exception as err:  # noqa: BLE001 - every failure becomes one message
                    reason = _reason(err)
                    raise _SourceFailed(
                        reason.replace(str(tmp), f"the downloaded {fname}") if tmp else reason
                    ) from None
            except (_SourceFailed, _Fatal) as err:
                kept = f"Verified and installed before the failure: {', '.join(done)}. " if done else ""
                raise _fail(
                    f"the excerpt {fname} from {url}",
                    [str(err)],
                    "excerpts",
                    opts,
                    note=f"{kept}Nothing partial was left in {opts.dest}.",
                ) from None
            finally:
                if tmp is not None:
                    Path(tmp).unlink(missing_ok=True)
            opts.say(f"{name}: verified (sha256 {sha[:12]}...) and installed")
            done.append(fname)
            if entry.sha256 != sha:
                _record(opts, [(name, sha, entry.source)])


# --------------------------------------------------------------------------------------- bundles
def _installed_ok(dataset: str, opts: _Options) -> bool:
    """Whether ``<dest>/<dataset>`` is already complete (all recorded files match) and need not be fetched."""
    report = _check_dataset(dataset, opts, load=False)
    if not report:
        return False
    statuses = {r["status"] for r in report}
    if statuses == {"ok"}:
        opts.say(f"{dataset}: present and verified ({len(report)} files match the registry), not downloaded again")
        return True
    if statuses == {"unrecorded"} and not opts.record:
        opts.say(f"{dataset}: present, no sha256 in the registry yet (checked by the loader below)")
        return True
    return False


def _unpack(archive: Path, into: Path) -> None:
    """Unpack a zip or tar archive with pooch's processors (members checked to stay inside ``into``)."""
    import pooch

    if zipfile.is_zipfile(archive):
        processor = pooch.Unzip(extract_dir=str(into))
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            for m in tar.getmembers():
                parts = Path(m.name).parts
                if m.name.startswith(("/", "\\")) or ".." in parts or not (m.isfile() or m.isdir()):
                    raise _SourceFailed(f"the archive holds an unsafe member {m.name!r}; it was deleted")
        processor = pooch.Untar(extract_dir=str(into))
    else:
        head = archive.read_bytes()[:200].lower()
        hint = " (it looks like a web page: a login or error page?)" if b"<html" in head or b"<!doctype" in head else ""
        raise _SourceFailed(f"the download is not a zip or tar archive{hint}; it was deleted")
    with _quiet_pooch():
        processor(str(archive), "download", None)


def _locate(unpacked: Path, dataset: str) -> tuple[Path, list[Path]]:
    """The folder named ``dataset`` inside the unpacked archive and its ``sbj_<k>.csv`` files."""
    from .data import find_subject_files

    candidates = sorted(
        (p for p in unpacked.rglob(dataset) if p.is_dir() and p.name == dataset), key=lambda p: (len(p.parts), str(p))
    )
    for folder in candidates:
        try:
            return folder, find_subject_files(folder, dataset)
        except (ValueError, FileNotFoundError):
            continue
    top = sorted(p.name + ("/" if p.is_dir() else "") for p in unpacked.iterdir())[:8]
    raise _SourceFailed(
        f"wrong layout: the archive has no {dataset}/raw/inertial[/50hz]/sbj_<k>.csv "
        f"(expected data/{dataset}/raw/inertial/sbj_<k>.csv; its top level holds {top or 'nothing'})"
    )


def _stage(
    dataset: str, unpacked: Path, archive_name: str, opts: _Options
) -> tuple[Path, "HARDataset", dict[str, str]]:
    """Move one dataset's files from the unpacked archive into a staging folder and check them with the loader.

    Returns the staging folder, the loaded dataset and ``{installed name: archive member}``.
    """
    from .data import load_real

    root, files = _locate(unpacked, dataset)
    staging = Path(tempfile.mkdtemp(prefix=f".staged-{dataset}-", dir=opts.dest))
    members: dict[str, str] = {}
    for f in files:
        os.replace(f, staging / f.name)
        members[f"{dataset}/{f.name}"] = f.relative_to(unpacked).as_posix()
    notes = sorted((root / "annotations").glob("*.json")) if (root / "annotations").is_dir() else []
    if notes:
        (staging / "annotations").mkdir()
        for f in notes:
            os.replace(f, staging / "annotations" / f.name)
            members[f"{dataset}/annotations/{f.name}"] = f.relative_to(unpacked).as_posix()
    try:
        data = load_real(staging, dataset)  # columns, numbers, label strings
    except (ValueError, FileNotFoundError) as err:
        where = f"{archive_name}!{files[0].parent.relative_to(unpacked).as_posix()}"
        raise _SourceFailed(
            f"the {dataset} files fail the loader's checks: {str(err).replace(str(staging), where)}"
        ) from None
    n, want = len(data.subject_ids), opts.expected[dataset]
    if n != want:
        raise _SourceFailed(
            f"{archive_name} holds {n} {dataset} subjects ({data.subject_ids[:5]}...), but the release "
            f"the paper used has {want}: a different release, or an incomplete archive"
        )
    return staging, data, members


def _try_bundle(bundle: str, datasets: Sequence[str], opts: _Options) -> dict[str, "HARDataset"]:
    entry = opts.registry.get(bundle)
    url = opts.url(entry)
    opts.say(f"{bundle}: downloading {url} (for {', '.join(datasets)})")
    archive: Path | None = None
    temp: list[Path] = []
    try:
        try:
            archive = _fetch(bundle, url, None if opts.record else entry.sha256, opts)
            digest = sha256_of(archive)
            opts.say(f"{bundle}: {archive.stat().st_size / 1e6:.1f} MB, sha256 {digest[:12]}...; unpacking")
            unpacked = Path(tempfile.mkdtemp(prefix=".unpack-", dir=opts.dest))
            temp.append(unpacked)
            _unpack(archive, unpacked)
            archive.unlink()
            archive = None
            staged: dict[str, tuple[Path, HARDataset, dict[str, str]]] = {}
            for ds in datasets:
                staged[ds] = _stage(ds, unpacked, bundle, opts)
                temp.append(staged[ds][0])
            changes: list[tuple[str, str, str]] = []
            if entry.sha256 != digest:
                changes.append((bundle, digest, entry.source))
            for ds, (staging, _, members) in staged.items():
                recorded = {e.name: e.sha256 for e in opts.registry.members(ds, bundle)}
                for name, member in members.items():
                    sha = sha256_of(staging / name.split("/", 1)[1])
                    if recorded.get(name) not in (None, sha) and not opts.record:
                        raise _SourceFailed(
                            f"{bundle}!{member}: sha256 {sha} differs from the registry's "
                            f"{recorded[name]} (damaged archive, or the publisher changed it)"
                        )
                    if recorded.get(name) != sha:
                        changes.append((name, sha, f"{bundle}!{member}"))
            for ds, (staging, _, _) in staged.items():  # rename into place, replacing an old copy
                final = opts.dest / ds
                if final.exists():
                    old = Path(tempfile.mkdtemp(prefix=f".replaced-{ds}-", dir=opts.dest))
                    temp.append(old)
                    os.replace(final, old / ds)
                os.replace(staging, final)
                opts.say(f"{ds}: {len(staged[ds][1].subject_ids)} subjects checked and installed in {final}")
            _record(opts, changes)
            return {ds: data for ds, (_, data, _) in staged.items()}
        except (_SourceFailed, _Fatal):
            raise
        except Exception as err:  # noqa: BLE001 - every failure becomes one message
            raise _SourceFailed(_reason(err)) from None
    finally:
        if archive is not None:
            archive.unlink(missing_ok=True)
        for p in temp:
            shutil.rmtree(p, ignore_errors=True)


def _install_bundle(datasets: Sequence[str], opts: _Options) -> dict[str, "HARDataset"]:
    reasons = []
    bundles = [b for b in BUNDLES if any(e.name == b and e.archive is None for e in opts.registry.entries)]
    for bundle in bundles:
        try:
            return _try_bundle(bundle, datasets, opts)
        except _SourceFailed as err:
            url = opts.url(opts.registry.get(bundle))
            opts.say(f"{bundle}: failed: {err}")
            reasons.append(f"{bundle} ({url}): {err}")
        except _Fatal as err:
            raise _fail(f"the {' and '.join(datasets)} data", [str(err)], datasets, opts) from None
    tried = f"tried {len(bundles)} source{'s' if len(bundles) != 1 else ''}"
    raise _fail(f"the {' and '.join(datasets)} data ({tried})", reasons, datasets, opts)


# --------------------------------------------------------------------------------------- summary
def load_downloaded(target: str = "all", dest: str | os.PathLike | None = None) -> dict[str, "HARDataset"]:
    """Load what ``data_download.py <target>`` installed, with the loaders' checks.

    Parameters
    ----------
    target : {"wear", "wetlab", "excerpts", "all"}
    dest : path, optional
        The data folder (default :func:`leakage_core.data.data_dir`).

    Returns
    -------
    dict
        ``{"wear": ..., "wetlab": ..., "wear excerpts": ..., "wetlab excerpts": ...}`` (the entries of
        ``target``), each a :class:`~leakage_core.data.HARDataset`.
    """
    from .data import data_dir, load_excerpts, load_real

    root = data_dir(dest)
    out: dict[str, HARDataset] = {}
    for part in _parts(target):
        if part == "excerpts":
            out["wear excerpts"] = load_excerpts(root / "excerpts", "wear")
            out["wetlab excerpts"] = load_excerpts(root / "excerpts", "wetlab")
        else:
            out[part] = load_real(root / part, part)
    return out


def _say_summary(datasets: Mapping[str, "HARDataset"], opts: _Options) -> None:
    from .data import summary_text

    opts.say(f"Summary (checked by the loaders of leakage_core.data):\n{summary_text(datasets)}")


def _parts(target: str) -> tuple[str, ...]:
    if target not in DOWNLOAD_TARGETS:
        raise DownloadError(
            f"data_download.py: unknown target {target!r}; choose one of {', '.join(DOWNLOAD_TARGETS)}."
        )
    return DOWNLOAD_TARGETS[target]


# --------------------------------------------------------------------------------------- public API
def download(
    target: str = "all",
    dest: str | os.PathLike | None = None,
    *,
    force: bool = False,
    record: bool = False,
    registry: str | os.PathLike | None = None,
    mirror: str | None = None,
    expected_subjects: Mapping[str, int] | None = None,
    retries: int = 2,
    timeout: float = 60.0,
    out: TextIO | None = None,
) -> "pd.DataFrame":
    """Download, verify and install ``target``, load it once and return its :func:`~leakage_core.data.summary_table`.

    Raises :class:`DownloadError` (with the manual steps) on any failure;
    verified files already in place are not downloaded again.

    Parameters
    ----------
    target : {"wear", "wetlab", "excerpts", "all"}
        ``all`` = WEAR and Wetlab (one archive, fetched once) and the four excerpts.
    dest : path, optional
        The data folder (default :func:`leakage_core.data.data_dir`, i.e. ``$LEAKAGE_HAR_DATA``).
    force : bool
        Download and install again even if verified files are present.
    record : bool
        Accept files whose sha256 differs from (or is missing in) the registry once they pass the
        loader's checks, and write their sha256 into the registry (a maintainer's update).
    registry : path, optional
        Registry file (default ``$LEAKAGE_HAR_REGISTRY``, else the packaged one).
    mirror : str, optional
        Base URL serving every registry name (default ``$LEAKAGE_HAR_MIRROR``; none: the registry's URLs).
    expected_subjects : dict, optional
        Override the expected subject counts (WEAR 18, Wetlab 22); meant for tests with small archives.
    retries : int
        Extra attempts per download after a network error or checksum mismatch.
    timeout : float
        Seconds to wait for the server.
    out : text stream, optional
        Where progress lines and the summary go (default stdout).
    """
    parts = _parts(target)
    opts = _options(dest, registry, mirror, force, record, expected_subjects, retries, timeout, out)
    try:
        opts.dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(
            f"data_download.py: cannot create the data folder {opts.dest} ({err.strerror}); "
            "choose a writable folder with --dest or $LEAKAGE_HAR_DATA."
        ) from None
    _cleanup(opts.dest)
    loaded: dict[str, HARDataset] = {}
    errors: list[str] = []  # "all": a failing bundle does not stop the excerpts, and the reverse
    try:
        bundle_parts = [p for p in parts if p != "excerpts" and (opts.force or not _installed_ok(p, opts))]
        if bundle_parts:
            try:
                loaded.update(_install_bundle(bundle_parts, opts))
            except DownloadError as err:
                errors.append(str(err))
        if "excerpts" in parts:
            try:
                _install_excerpts(opts)
            except DownloadError as err:
                errors.append(str(err))
    finally:
        _cleanup(opts.dest)
    if errors:
        raise DownloadError("\n\n".join(errors))
    from .data import load_excerpts, load_real, summary_table

    datasets: dict[str, HARDataset] = {}
    for part in parts:  # the loaders' checks, once per run
        try:
            if part == "excerpts":
                datasets["wear excerpts"] = load_excerpts(opts.dest / "excerpts", "wear")
                datasets["wetlab excerpts"] = load_excerpts(opts.dest / "excerpts", "wetlab")
                continue
            datasets[part] = loaded[part] if part in loaded else load_real(opts.dest / part, part)
            n, want = len(datasets[part].subject_ids), opts.expected[part]
            if n != want:
                raise ValueError(f"{opts.dest / part}: {n} subjects, but the release the paper used has {want}")
        except (ValueError, FileNotFoundError) as err:
            raise _fail(
                f"a usable {part} folder",
                [f"the loader's check failed: {err}"],
                part,
                opts,
                note=f"Repair it with: python data_download.py {part} --force"
                f"{' --dest ' + str(opts.dest) if opts.dest_given else ''}",
            ) from None
    _say_summary(datasets, opts)
    return summary_table(datasets)


def _check_dataset(dataset: str, opts: _Options, load: bool = True) -> list[dict]:
    """Per-file report of ``<dest>/<dataset>`` against the registry (best-matching archive)."""
    folder = opts.dest / dataset
    present: dict[str, Path] = {}
    if folder.is_dir():
        present.update({f"{dataset}/{p.name}": p for p in folder.glob("sbj_*.csv")})
        present.update({f"{dataset}/annotations/{p.name}": p for p in (folder / "annotations").glob("*.json")})
    if not present and not load:
        return []
    by_archive: dict[str, dict[str, str | None]] = {}
    for e in opts.registry.members(dataset):
        by_archive.setdefault(e.archive or "", {})[e.name] = e.sha256
    hashes = {name: sha256_of(p) for name, p in present.items()}
    best = max(by_archive.values(), key=lambda rec: sum(hashes.get(n) == h for n, h in rec.items()), default={})
    rows = []
    for name in sorted(set(present) | set(best), key=_natural):
        if name not in present:
            rows.append({"file": name, "status": "missing", "detail": "recorded in the registry, not in the folder"})
        elif best.get(name) is None:
            rows.append(
                {"file": name, "status": "unrecorded", "detail": f"sha256 {hashes[name][:12]}... (no recorded value)"}
            )
        elif best[name] == hashes[name]:
            rows.append({"file": name, "status": "ok", "detail": f"sha256 {hashes[name][:12]}... matches the registry"})
        else:
            rows.append(
                {
                    "file": name,
                    "status": "mismatch",
                    "detail": f"sha256 {hashes[name][:12]}..., the registry says {str(best[name])[:12]}...",
                }
            )
    return rows


def _natural(name: str) -> tuple:
    import re

    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def check(
    target: str = "all",
    dest: str | os.PathLike | None = None,
    *,
    registry: str | os.PathLike | None = None,
    expected_subjects: Mapping[str, int] | None = None,
    out: TextIO | None = None,
) -> "pd.DataFrame":
    """Verify an existing data folder: sha256 of every file, expected subjects, the loaders' checks.

    Prints one line per file and, if everything loads, the summary.

    Returns
    -------
    pandas.DataFrame
        Columns ``file, status, detail``; ``status`` is ``ok``, ``mismatch``, ``missing``,
        ``unrecorded`` (present, no sha256 in the registry yet) or ``invalid`` (fails the loader).
        The folder is usable when no status is ``mismatch``, ``missing`` or ``invalid``.
    """
    import pandas as pd

    from .data import EXCERPT_FILES, load_excerpts, load_real, read_excerpt_csv

    parts = _parts(target)
    opts = _options(dest, registry, None, False, False, expected_subjects, 0, 0.0, out)
    rows: list[dict] = []
    datasets: dict[str, HARDataset] = {}
    for part in parts:
        if part == "excerpts":
            for dataset, names in EXCERPT_FILES.items():
                for fname in names:
                    name, path = f"excerpts/{fname}", opts.dest / "excerpts" / fname
                    want = opts.registry.get(name).sha256
                    if not path.is_file():
                        rows.append({"file": name, "status": "missing", "detail": f"no file {path}"})
                        continue
                    have = sha256_of(path)
                    try:
                        read_excerpt_csv(path, dataset)
                    except ValueError as err:
                        rows.append({"file": name, "status": "invalid", "detail": str(err)})
                        continue
                    if want is None:
                        rows.append(
                            {
                                "file": name,
                                "status": "unrecorded",
                                "detail": f"sha256 {have[:12]}... (no recorded value)",
                            }
                        )
                    elif want == have:
                        rows.append(
                            {"file": name, "status": "ok", "detail": f"sha256 {have[:12]}... matches the registry"}
                        )
                    else:
                        rows.append(
                            {
                                "file": name,
                                "status": "mismatch",
                                "detail": f"sha256 {have[:12]}..., the registry says {want[:12]}...",
                            }
                        )
            if all(r["status"] in ("ok", "unrecorded") for r in rows if r["file"].startswith("excerpts/")):
                datasets["wear excerpts"] = load_excerpts(opts.dest / "excerpts", "wear")
                datasets["wetlab excerpts"] = load_excerpts(opts.dest / "excerpts", "wetlab")
            continue
        file_rows = _check_dataset(part, opts)
        rows += file_rows
        try:
            data = load_real(opts.dest / part, part)
        except (ValueError, FileNotFoundError) as err:
            rows.append({"file": f"{part}/", "status": "invalid", "detail": str(err)})
            continue
        n, want_n = len(data.subject_ids), opts.expected[part]
        ok = n == want_n
        rows.append(
            {
                "file": f"{part}/ (subjects)",
                "status": "ok" if ok else "invalid",
                "detail": f"{n} subjects, expected {want_n}",
            }
        )
        if ok:
            datasets[part] = data
    report = pd.DataFrame(rows, columns=["file", "status", "detail"])
    width = max([len(r["file"]) for r in rows] + [10])
    for r in rows:
        opts.say(f"{r['status']:<10}  {r['file']:<{width}}  {r['detail']}")
    if datasets and report["status"].isin(["ok", "unrecorded"]).all():
        _say_summary(datasets, opts)
    return report


# --------------------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="data_download.py",
        description=(
            "Download the real WEAR and Wetlab data and the four public 10-minute excerpts into the folder "
            "leakage_core.data.load_real / load_excerpts read, verify every file by sha256 against the "
            "registry (leakage_core/data_registry.txt), check it with the loaders and print a summary. "
            "Licence of all data: CC BY-NC-SA 4.0 (cite WEAR, Wetlab and the excerpts' repository)."
        ),
        epilog=(
            "targets: wear = WEAR (18-subject pre-release the paper used) and wetlab = Wetlab (22 subjects), "
            "both from the paper's bundle (fallback: a second bundle); excerpts = four real 10-minute "
            "recordings (~2 MB each); all = all three (the bundle is fetched once). "
            "Default folder: $LEAKAGE_HAR_DATA, else $XDG_DATA_HOME/leakage_har (~/.local/share/leakage_har); "
            "the chapters read the same variable. Re-running skips verified files. "
            "Exit status: 0 ok, 1 failure (one message with the manual steps), 130 interrupted."
        ),
    )
    parser.add_argument("target", choices=list(DOWNLOAD_TARGETS), help="what to download (or check)")
    parser.add_argument(
        "--dest", metavar="DIR", help="data folder (default: $LEAKAGE_HAR_DATA or ~/.local/share/leakage_har)"
    )
    parser.add_argument(
        "--force", action="store_true", help="download and install again even if verified files are present"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="download nothing: verify the folder (sha256 per file, subjects, loader checks) and report per file",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="maintainers: accept files that pass the loader's checks and write their sha256 into the registry",
    )
    parser.add_argument(
        "--registry", metavar="FILE", help=f"registry file (default: ${REGISTRY_ENV} or the packaged one)"
    )
    return parser


def main(argv: Sequence[str] | None = None, **overrides) -> int:
    """Command line of ``data_download.py``; returns the exit status (0 ok, 1 failure, 130 Ctrl-C).

    ``overrides`` go to :func:`download` / :func:`check` (``mirror``,
    ``expected_subjects``, ``retries``, ``timeout``, ``registry``); tests use them. Every failure is
    printed as one message on stderr, never as a traceback.
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    registry = overrides.pop("registry", None)
    registry = args.registry if args.registry is not None else registry
    try:
        if args.check:
            for key in ("mirror", "retries", "timeout"):
                overrides.pop(key, None)
            report = check(args.target, args.dest, registry=registry, **overrides)
            bad = report[~report["status"].isin(["ok", "unrecorded"])]
            if len(bad):
                opts = _options(args.dest, registry, None, False, False, None, 0, 0.0, None)
                kinds = sorted({f.split("/", 1)[0] for f in bad["file"]}, key=list(DOWNLOAD_TARGETS).index)
                fix = "; ".join(
                    f"python data_download.py {k} --force{' --dest ' + str(opts.dest) if args.dest else ''}"
                    for k in kinds
                )
                print(
                    f"data_download.py: {len(bad)} problem(s) in {opts.dest} "
                    f"({', '.join(sorted(set(bad['status'])))}: {', '.join(bad['file'][:4])}"
                    f"{'...' if len(bad) > 4 else ''}). Repair with: {fix}",
                    file=sys.stderr,
                )
                return 1
            return 0
        download(args.target, args.dest, force=args.force, record=args.record, registry=registry, **overrides)
        return 0
    except DownloadError as err:
        print(str(err), file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into a command that stopped reading (e.g. head)
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except (OSError, ValueError):
            pass
        return 1
    except KeyboardInterrupt:
        print("data_download.py: interrupted; temporary files were removed, nothing partial was left.", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - a reader never sees a traceback
        print(
            f"data_download.py: unexpected error ({type(err).__name__}: {err}). Nothing partial was left; "
            "please report this with the command you ran.",
            file=sys.stderr,
        )
        return 1

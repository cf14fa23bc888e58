"""data_download.py against a real HTTP server on 127.0.0.1: success, idempotence and every failure.

Each failure test asserts the exit status, the message and that nothing partial is left in the data
folder. The server serves the 400-row excerpt fixtures (tests/fixtures/excerpts, CC BY-NC-SA 4.0) and
small archives built here in the release layout (data/<dataset>/raw/inertial/sbj_<k>.csv).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from leakage_core import download as dl
from leakage_core.data import DATA_ENV, PROFILES, class_share_table, load_excerpts, load_real, summary_table

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "excerpts"
EXCERPTS = ["wear_0_10.csv", "wear_10_20.csv", "wetlab_0_10.csv", "wetlab_10_20.csv"]
SMALL = {"wear": 3, "wetlab": 2}  # subjects in the test archive (the real release: 18 and 22)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------ the HTTP server
class Handler(SimpleHTTPRequestHandler):
    """Serves a folder; ``/truncated/<file>`` announces the full length but sends half and hangs up."""

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path.startswith("/truncated/"):
            body = (Path(self.directory) / self.path.removeprefix("/truncated/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield SimpleNamespace(root=root, url=f"http://127.0.0.1:{httpd.server_address[1]}", requests=httpd.requests)
    httpd.shutdown()
    httpd.server_close()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ------------------------------------------------------------------------------ test data
def subject_csv(dataset: str, k: int, n: int = 300, n_channels: int | None = None) -> str:
    prof = PROFILES[dataset]
    rng = np.random.default_rng(k)
    cols = list(prof.channels) if n_channels is None else [f"c{i}" for i in range(n_channels)]
    df = pd.DataFrame(rng.normal(size=(n, len(cols))).round(5), columns=cols)
    df.insert(0, "sbj_id", k)
    if dataset == "wear":  # NULL as an empty cell, as in the WEAR release
        labels = [""] * 100 + ["jogging"] * 80 + [""] * 40 + ["push-ups"] * (n - 220)
    else:
        labels = ["null_class"] * 120 + ["pipetting"] * 60 + ["pour catalysator"] * 50 + ["null_class"] * (n - 230)
    df["label"] = labels
    return df.to_csv(index=False)


def make_bundle(
    path: Path,
    *,
    subjects: dict[str, int] = SMALL,
    inner: str = "raw/inertial",
    prefix: str = "",
    broken: dict[str, str] | None = None,
) -> Path:
    """A zip in the release layout: ``<prefix>data/<dataset>/<inner>/sbj_<k>.csv`` plus annotations."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for dataset, n in subjects.items():
            for k in range(n):
                z.writestr(f"{prefix}data/{dataset}/{inner}/sbj_{k}.csv", subject_csv(dataset, k))
            z.writestr(
                f"{prefix}data/{dataset}/annotations/loso_sbj_0.json",
                json.dumps({"label_dict": {"jogging": 0}, "database": {}}),
            )
        for name, text in (broken or {}).items():
            z.writestr(f"{prefix}{name}", text)
    return path


def write_registry(
    path: Path,
    base: str,
    *,
    excerpt_hash: dict[str, str] | None = None,
    paper: str = "/bundle.zip",
    fallback: str = "/missing-fallback.zip",
    bundle_hash: str = "unknown",
) -> Path:
    lines = ["# test registry"]
    for name in EXCERPTS:
        h = (excerpt_hash or {}).get(name, sha(FIXTURES / name))
        lines.append(f"excerpts/{name}  {h}  {base}/excerpts/{name}")
    lines.append(f"bundle-paper.zip  {bundle_hash}  {base}{paper}")
    lines.append(f"bundle-fallback.zip  unknown  {base}{fallback}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def env(server, tmp_path, capsys, monkeypatch):
    """A served folder with the excerpts and a bundle, a fresh data folder and a temporary registry."""
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    monkeypatch.delenv(dl.REGISTRY_ENV, raising=False)
    shutil.copytree(FIXTURES, server.root / "excerpts")
    make_bundle(server.root / "bundle.zip")
    dest = tmp_path / "data"
    reg = write_registry(tmp_path / "registry.txt", server.url)

    def run(*argv: str, registry: Path = reg, **kw) -> SimpleNamespace:
        kw.setdefault("retries", 0)
        code = dl.main([*argv, "--dest", str(dest)], registry=registry, **kw)
        out = capsys.readouterr()
        return SimpleNamespace(code=code, out=out.out, err=out.err)

    return SimpleNamespace(server=server, dest=dest, registry=reg, run=run, tmp=tmp_path)


def files_in(dest: Path) -> list[str]:
    return sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) if dest.exists() else []


def assert_clean(dest: Path, allowed: set[str] = frozenset()) -> None:
    """Nothing but ``allowed`` files, and no temporary or hidden leftovers anywhere."""
    left = files_in(dest)
    hidden = (
        [p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.name.startswith((".", "tmp"))]
        if dest.exists()
        else []
    )
    assert not hidden, f"leftovers: {hidden}"
    assert set(left) <= set(allowed), f"unexpected files: {sorted(set(left) - set(allowed))}"


# ------------------------------------------------------------------------------ success paths
def test_excerpts_download_summary_and_idempotence(env):
    r = env.run("excerpts")
    assert r.code == 0, r.err
    assert r.err == ""
    for name in EXCERPTS:
        assert sha(env.dest / "excerpts" / name) == sha(FIXTURES / name)
    assert_clean(env.dest, {f"excerpts/{n}" for n in EXCERPTS})
    assert "Summary (checked by the loaders of leakage_core.data):" in r.out
    table = r.out.split("Summary", 1)[1]
    assert "wear excerpts" in table and "wetlab excerpts" in table and "null" in table
    assert "Class shares (share of samples):" in r.out
    assert load_excerpts(env.dest / "excerpts", "wetlab").subject_ids == [1, 2]
    n_requests = len(env.server.requests)
    assert n_requests == 4
    again = env.run("excerpts")  # idempotent: nothing downloaded
    assert again.code == 0 and len(env.server.requests) == n_requests
    assert again.out.count("present and verified") == 4


def test_download_returns_the_summary_table(env):
    table = dl.download("excerpts", env.dest, registry=env.registry, retries=0, out=io.StringIO())
    assert list(table.index) == ["wear excerpts", "wetlab excerpts"]
    assert table["subjects"].tolist() == [2, 2]
    assert np.allclose(table["minutes"], 800 / 50 / 60)  # 2 x 400 rows at 50 Hz
    assert set(table.columns) >= {"minutes", "min_minutes", "max_minutes", "windows", "null_share", "classes_present"}
    shares = class_share_table(dl.load_downloaded("excerpts", env.dest))
    assert abs(shares["wear excerpts"].sum() - 1) < 1e-9 and shares["wetlab excerpts"].index[0] == "null"


def test_all_fetches_the_bundle_once_records_its_hash_and_is_idempotent(env):
    r = env.run("all", expected_subjects=SMALL)
    assert r.code == 0, r.err
    assert [p for p in env.server.requests if "bundle" in p] == ["/bundle.zip"]
    expected = {f"wear/sbj_{k}.csv" for k in range(3)} | {f"wetlab/sbj_{k}.csv" for k in range(2)}
    expected |= {"wear/annotations/loso_sbj_0.json", "wetlab/annotations/loso_sbj_0.json"}
    expected |= {f"excerpts/{n}" for n in EXCERPTS}
    assert set(files_in(env.dest)) == expected
    assert_clean(env.dest, expected)
    assert load_real(env.dest / "wear", "wear").n_channels == 12
    wet = load_real(dataset="wetlab", root=env.dest / "wetlab")
    assert "pouring" in [wet.class_names[i] for i in np.unique(wet.subjects[0].sample_labels)]
    # first verified-by-structure download: the bundle's and every member's sha256 are recorded
    reg = dl.Registry(env.registry)
    assert reg.get("bundle-paper.zip").sha256 == sha(env.server.root / "bundle.zip")
    members = {e.name: e for e in reg.members("wear")}
    assert members["wear/sbj_1.csv"].source == "bundle-paper.zip!data/wear/raw/inertial/sbj_1.csv"
    assert members["wear/sbj_1.csv"].sha256 == sha(env.dest / "wear" / "sbj_1.csv")
    assert "recorded sha256 of bundle-paper.zip" in r.out
    # summary: subjects, minutes, class shares
    summary = r.out.split("Summary", 1)[1]
    assert "wear excerpts" in summary and "jogging" in summary and "pipetting" in summary
    assert summary_table(dl.load_downloaded("all", env.dest)).loc["wear", "subjects"] == 3
    n = len(env.server.requests)
    again = env.run("all", expected_subjects=SMALL)
    assert again.code == 0 and len(env.server.requests) == n  # nothing downloaded again
    assert "wear: present and verified" in again.out and "wetlab: present and verified" in again.out
    forced = env.run("wear", "--force", expected_subjects=SMALL)
    assert forced.code == 0 and env.server.requests[n:] == ["/bundle.zip"]
    assert_clean(env.dest, expected)


@pytest.mark.parametrize("inner,prefix", [("raw/inertial/50hz", ""), ("raw/inertial", "wear_wetlab_bundle/")])
def test_bundle_layout_variants(env, inner, prefix):
    make_bundle(env.server.root / "bundle.zip", inner=inner, prefix=prefix)
    r = env.run("wetlab", expected_subjects=SMALL)
    assert r.code == 0, r.err
    assert load_real(env.dest / "wetlab", "wetlab").subject_ids == [0, 1]
    assert not (env.dest / "wear").exists()  # only the requested dataset is installed
    assert_clean(env.dest, {"wetlab/sbj_0.csv", "wetlab/sbj_1.csv", "wetlab/annotations/loso_sbj_0.json"})


def test_fallback_bundle_is_used_when_the_paper_bundle_is_gone(env):
    write_registry(env.registry, env.server.url, paper="/gone.zip", fallback="/bundle.zip")
    r = env.run("wear", expected_subjects=SMALL)
    assert r.code == 0, r.err
    assert "bundle-paper.zip: failed: the server answered HTTP 404 Not Found" in r.out
    assert dl.Registry(env.registry).get("bundle-fallback.zip").sha256 == sha(env.server.root / "bundle.zip")
    assert dl.Registry(env.registry).get("bundle-paper.zip").sha256 is None


def test_env_variables_choose_folder_registry_and_mirror(env, monkeypatch):
    """$LEAKAGE_HAR_DATA is the default folder; $LEAKAGE_HAR_MIRROR replaces every URL by <mirror>/<name>."""
    mirror = env.server.root / "mirror"
    shutil.copytree(FIXTURES, mirror / "excerpts")
    reg = write_registry(env.tmp / "reg2.txt", "http://127.0.0.1:9")  # URLs nobody serves
    monkeypatch.setenv(DATA_ENV, str(env.dest))
    monkeypatch.setenv(dl.REGISTRY_ENV, str(reg))
    monkeypatch.setenv(dl.MIRROR_ENV, env.server.url + "/mirror")
    assert dl.main(["excerpts"], retries=0) == 0
    assert sorted(p for p in env.server.requests) == sorted(f"/mirror/excerpts/{n}" for n in EXCERPTS)
    assert load_excerpts(dataset="wear").subject_ids == [1, 2]  # the loader finds them by default


# ------------------------------------------------------------------------------ --check and --record
def test_check_reports_per_file(env):
    assert env.run("all", expected_subjects=SMALL).code == 0
    ok = env.run("all", "--check", expected_subjects=SMALL)
    assert ok.code == 0, ok.err
    lines = [line for line in ok.out.splitlines() if line.startswith(("ok ", "mismatch", "missing", "invalid"))]
    # 4 excerpts; WEAR 3 subjects + 1 annotation file + the subject count; Wetlab 2 + 1 + 1
    assert len(lines) == 4 + 5 + 4 and all(line.startswith("ok") for line in lines)
    assert "Summary" in ok.out
    (env.dest / "wear" / "sbj_1.csv").write_text(subject_csv("wear", 7))  # valid, but not the recorded file
    (env.dest / "excerpts" / "wetlab_0_10.csv").unlink()
    bad = env.run("all", "--check", expected_subjects=SMALL)
    assert bad.code == 1
    assert any(line.startswith("mismatch") and "wear/sbj_1.csv" in line for line in bad.out.splitlines())
    assert any(line.startswith("missing") and "excerpts/wetlab_0_10.csv" in line for line in bad.out.splitlines())
    assert any(line.startswith("ok") and "wear/sbj_0.csv" in line for line in bad.out.splitlines())
    assert "data_download.py: 2 problem(s)" in bad.err
    assert "Repair with: python data_download.py wear --force" in bad.err
    assert "Traceback" not in bad.err
    fixed = env.run("all", expected_subjects=SMALL)  # a normal run repairs what --check found
    assert fixed.code == 0 and env.run("all", "--check", expected_subjects=SMALL).code == 0


def test_check_on_an_empty_folder(env):
    r = env.run("all", "--check")
    assert r.code == 1
    assert sum(line.startswith("missing") for line in r.out.splitlines()) == 4
    assert "invalid     wear/" in r.out and "does not exist" in r.out
    assert "Repair with: python data_download.py wear --force" in r.err


def test_check_counts_subjects(env):
    assert env.run("wear", expected_subjects=SMALL).code == 0
    r = env.run("wear", "--check")  # the real release has 18 subjects
    assert r.code == 1 and "3 subjects, expected 18" in r.out


def test_record_writes_and_updates_hashes(env):
    reg = write_registry(
        env.tmp / "reg_rec.txt", env.server.url, excerpt_hash={"wear_0_10.csv": "unknown", "wear_10_20.csv": "0" * 64}
    )
    refused = env.run("excerpts", registry=reg)  # a known hash that does not match: refused without --record
    assert refused.code == 1 and "checksum mismatch" in refused.err
    r = env.run("excerpts", "--record", registry=reg)
    assert r.code == 0, r.err
    recorded = dl.Registry(reg)
    assert recorded.get("excerpts/wear_0_10.csv").sha256 == sha(FIXTURES / "wear_0_10.csv")
    assert recorded.get("excerpts/wear_10_20.csv").sha256 == sha(FIXTURES / "wear_10_20.csv")
    assert "# test registry" in reg.read_text()  # comments survive
    assert "recorded 1 sha256 value(s)" in r.out


# ------------------------------------------------------------------------------ failures
def manual_steps_for(text: str, target: str) -> None:
    assert "Manual steps:" in text and f"python data_download.py {target} --check" in text
    assert "Traceback" not in text


def test_checksum_mismatch_deletes_the_file(env):
    write_registry(env.registry, env.server.url, excerpt_hash={"wear_10_20.csv": "ab" * 32})
    r = env.run("excerpts")
    assert r.code == 1
    assert "could not get the excerpt wear_10_20.csv" in r.err
    assert f"checksum mismatch: sha256 {sha(FIXTURES / 'wear_10_20.csv')}, the registry says {'ab' * 32}" in r.err
    assert "the downloaded file was deleted" in r.err
    assert "Verified and installed before the failure: wear_0_10.csv" in r.err
    manual_steps_for(r.err, "excerpts")
    assert_clean(env.dest, {"excerpts/wear_0_10.csv"})


def test_truncated_download(env):
    write_registry(env.registry, env.server.url, paper="/truncated/bundle.zip")
    r = env.run("wear", expected_subjects=SMALL)
    assert r.code == 1
    assert "the download broke off before the end (truncated); the partial file was deleted" in r.err
    manual_steps_for(r.err, "wear")
    assert_clean(env.dest)


def test_damaged_archive(env):
    data = bytearray((env.server.root / "bundle.zip").read_bytes())
    data[200:400] = b"\0" * 200  # a corrupted copy: right size, damaged content
    (env.server.root / "bundle.zip").write_bytes(bytes(data))
    r = env.run("wear", expected_subjects=SMALL)
    assert r.code == 1
    assert "the archive is damaged" in r.err and "it was deleted" in r.err
    assert_clean(env.dest)
    assert dl.Registry(env.registry).get("bundle-paper.zip").sha256 is None  # nothing recorded


def test_html_page_instead_of_archive(env):
    (env.server.root / "bundle.zip").write_text("<!DOCTYPE html><html><body>Log in</body></html>")
    r = env.run("wear", expected_subjects=SMALL)
    assert r.code == 1
    assert "the download is not a zip or tar archive (it looks like a web page: a login or error page?)" in r.err
    assert_clean(env.dest)


def test_404_on_every_source(env):
    write_registry(env.registry, env.server.url, paper="/moved.zip", fallback="/also-moved.zip")
    r = env.run("wetlab", expected_subjects=SMALL)
    assert r.code == 1
    assert "could not get the wetlab data (tried 2 sources)" in r.err
    assert r.err.count("the server answered HTTP 404 Not Found") == 2
    assert f"Open {env.server.url}/moved.zip in a browser (or the fallback {env.server.url}/also-moved.zip)" in r.err
    assert f"into {env.dest / 'wetlab'}/" in r.err
    manual_steps_for(r.err, "wetlab")
    assert_clean(env.dest)


def test_connection_refused(env):
    base = f"http://127.0.0.1:{closed_port()}"
    reg = write_registry(env.tmp / "reg_closed.txt", base)
    r = env.run("all", registry=reg)
    assert r.code == 1
    assert "cannot connect to the server (offline, blocked by a firewall, or the address moved?)" in r.err
    assert "could not get the wear and wetlab data" in r.err and "could not get the excerpt wear_0_10.csv" in r.err
    manual_steps_for(r.err, "excerpts")
    assert "python data_download.py wear --check" in r.err and "python data_download.py wetlab --check" in r.err
    assert_clean(env.dest)


def test_wrong_layout(env):
    with zipfile.ZipFile(env.server.root / "bundle.zip", "w") as z:
        z.writestr("WEAR/inertial_data/subject_1.csv", subject_csv("wear", 1))
        z.writestr("README.txt", "not the release layout")
    r = env.run("wear", expected_subjects=SMALL)
    assert r.code == 1
    assert "wrong layout: the archive has no wear/raw/inertial[/50hz]/sbj_<k>.csv" in r.err
    assert "its top level holds ['README.txt', 'WEAR/']" in r.err
    manual_steps_for(r.err, "wear")
    assert_clean(env.dest)
    assert dl.Registry(env.registry).get("bundle-paper.zip").sha256 is None


def test_malformed_csv_in_the_bundle(env):
    make_bundle(
        env.server.root / "bundle.zip",
        broken={"data/wear/raw/inertial/sbj_3.csv": subject_csv("wear", 3, n_channels=11)},
    )
    r = env.run("wear", expected_subjects={"wear": 4})
    assert r.code == 1
    assert (
        "the wear files fail the loader's checks: bundle-paper.zip!data/wear/raw/inertial/sbj_3.csv: "
        "11 sensor columns, but wear has 12"
    ) in r.err
    assert_clean(env.dest)


def test_malformed_excerpt_csv(env):
    (env.server.root / "excerpts" / "wetlab_0_10.csv").write_text("1,00:00:00.000,1,0.1,0.2\n2,oops\n")
    write_registry(env.registry, env.server.url, excerpt_hash={"wetlab_0_10.csv": "unknown"})
    r = env.run("excerpts")
    assert r.code == 1
    assert "could not get the excerpt wetlab_0_10.csv" in r.err
    assert (
        "the downloaded wetlab_0_10.csv: not a readable CSV" in r.err or "columns, but a wetlab excerpt has 8" in r.err
    )
    assert_clean(env.dest, {"excerpts/wear_0_10.csv", "excerpts/wear_10_20.csv"})
    assert dl.Registry(env.registry).get("excerpts/wetlab_0_10.csv").sha256 is None  # nothing recorded


def test_wrong_subject_count(env):
    r = env.run("wear")  # the test archive has 3 subjects; the paper's release 18
    assert r.code == 1
    assert "bundle-paper.zip holds 3 wear subjects ([0, 1, 2]...), but the release the paper used has 18" in r.err
    assert_clean(env.dest)


def partial_extract(fail):
    """A ``ZipFile.extractall`` that writes the first member halfway, then calls ``fail`` (full disk, Ctrl-C)."""

    def extractall(self, path=None, members=None, pwd=None):
        info = next(i for i in self.infolist() if not i.is_dir())
        target = Path(path) / info.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.read(info)[: info.file_size // 2])
        fail()

    return extractall


@pytest.mark.parametrize("stage", ["download", "unpack"])
def test_disk_full(env, monkeypatch, stage):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if stage == "unpack":
        monkeypatch.setattr(zipfile.ZipFile, "extractall", partial_extract(full))
    else:
        import pooch

        def partial_download(self, url, output_file, pooch_, check_only=False):
            Path(output_file).write_bytes(b"PK\3\4 partial")
            full()

        monkeypatch.setattr(pooch.HTTPDownloader, "__call__", partial_download)
    r = env.run("wear", expected_subjects=SMALL)
    assert r.code == 1
    assert "the disk is full; nothing partial was kept" in r.err
    assert r.err.count("could not get") == 1  # a full disk does not try the fallback
    manual_steps_for(r.err, "wear")
    assert_clean(env.dest)


def test_ctrl_c_leaves_nothing_partial(env, monkeypatch):
    def interrupt():
        raise KeyboardInterrupt

    monkeypatch.setattr(zipfile.ZipFile, "extractall", partial_extract(interrupt))
    r = env.run("all", expected_subjects=SMALL)
    assert r.code == 130
    assert "interrupted; temporary files were removed, nothing partial was left" in r.err
    assert_clean(env.dest)


def test_leftovers_of_a_killed_run_are_removed(env):
    (env.dest / ".unpack-abc" / "data").mkdir(parents=True)
    (env.dest / ".downloads").mkdir()
    (env.dest / ".downloads" / "tmpxyz").write_bytes(b"half")
    assert env.run("excerpts").code == 0
    assert_clean(env.dest, {f"excerpts/{n}" for n in EXCERPTS})


# ------------------------------------------------------------------------------ CLI and package
def test_cli_help_and_bad_target(capsys):
    assert dl.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "{wear,wetlab,excerpts,all}" in text and "--check" in text and "--record" in text
    assert "LEAKAGE_HAR_DATA" in text and "CC BY-NC-SA 4.0" in text
    assert dl.main(["everything"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_cli_script_prints_one_message_and_no_traceback(env):
    (env.server.root / "excerpts" / "wear_0_10.csv").write_text("garbage\n")
    write_registry(env.registry, env.server.url, excerpt_hash={"wear_0_10.csv": "unknown"})
    run_env = {**os.environ, dl.REGISTRY_ENV: str(env.registry)}
    run_env.pop(dl.MIRROR_ENV, None)
    p = subprocess.run(
        [sys.executable, str(ROOT / "data_download.py"), "excerpts", "--dest", str(env.dest)],
        capture_output=True,
        text=True,
        env=run_env,
        cwd=env.tmp,
        timeout=60,
    )
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    assert p.stderr.startswith("data_download.py: could not get the excerpt wear_0_10.csv")
    assert "1 columns, but a wear excerpt has 6" in p.stderr
    assert_clean(env.dest)


def test_import_does_no_work():
    code = (
        "import sys, leakage_core.download; "
        "print(sorted(m for m in ('pooch', 'requests', 'pandas', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_data_pipeline_does_not_import_download():
    for py in (ROOT / "leakage_core" / "data").glob("*.py"):
        assert "download" not in "".join(
            line for line in py.read_text().splitlines(True) if line.lstrip().startswith(("import ", "from "))
        ), py


def test_packaged_registry():
    reg = dl.Registry(dl.registry_path())
    assert dl.registry_path() == ROOT / "leakage_core" / "data_registry.txt"
    known = {
        "wear_0_10.csv": "944fd88b783d1f171aa3793019d60b86c7fc846f14086f980341c19475115448",
        "wear_10_20.csv": "b7aa33fd9b114d1d401cbe359f52d880700195b46a5175d2cb7ea88dc2774766",
        "wetlab_0_10.csv": "229697f5a2c53610be1500dca31005ef4affc5906601a06a84f5a307f9b25e3a",
        "wetlab_10_20.csv": "224d8dded60952a87fff9486f2be1a5f13f009956137e3afde4307b98afa799c",
    }
    for name, h in known.items():
        e = reg.get(f"excerpts/{name}")
        assert e.sha256 == h and e.source.endswith(f"/video_assisted_annotation/main/sensor_data/{name}")
    assert reg.get("bundle-paper.zip").source == "https://uni-siegen.sciebo.de/s/1vSBUw0VGPuQCpm/download"
    assert reg.get("bundle-fallback.zip").source == "https://uni-siegen.sciebo.de/s/BNuj9LWBaMs5tZs/download"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'leakage_core = ["data_registry.txt"]' in pyproject and '"pooch>=' in pyproject


def test_malformed_registry(tmp_path, capsys):
    bad = tmp_path / "reg.txt"
    bad.write_text("excerpts/wear_0_10.csv deadbeef http://x\n")
    assert dl.main(["excerpts", "--dest", str(tmp_path / "d")], registry=bad) == 1
    assert "line 1 is not '<name> <sha256|unknown> <source>'" in capsys.readouterr().err

"""pprof interoperability with Go's own pprof implementation (no BPF needed).

A folded profile is converted to pprof by `dynoprof report`; `go tool pprof`
must read it (top function, labels), and a copy re-encoded by Go's encoder
(`go tool pprof -proto`) must read back through `dynoprof report` with the same
counts. Fails when `go` is missing (golang-go, installed by scripts/deps.sh test).
"""
import os
import subprocess

import pytest

from conftest import parse_folded_file
from requires import require_tool

FOLDED = """\
myapp;main;handle_request (/srv/app.py:42);hot_loop (/srv/app.py:10) 80
myapp;main;handle_request (/srv/app.py:42);json_dumps (/usr/lib/python3.11/json/__init__.py:231) 15
myapp;main;do_syscall_64_[k] 5
"""

@pytest.fixture(autouse=True)
def go_installed():
    require_tool("go", "golang-go")


def go_pprof(*args):
    """Runs `go tool pprof ARGS`; returns stdout (text, or bytes for -proto)."""
    env = dict(os.environ, GOCACHE="/tmp/gocache", HOME=os.environ.get("HOME", "/tmp"),
               PPROF_TMPDIR="/tmp")
    binary = "-proto" in args
    res = subprocess.run(["go", "tool", "pprof", *args], capture_output=True, text=not binary,
                         env=env, timeout=120)
    assert res.returncode == 0, f"go tool pprof {' '.join(args)} failed:\n{res.stderr}"
    return res.stdout


def top_rows(text):
    """[(flat, function)] from `go tool pprof -top` output, heaviest first."""
    rows, in_table = [], False
    for line in text.splitlines():
        cols = line.split()
        if cols[:2] == ["flat", "flat%"]:
            in_table = True
        elif in_table and len(cols) >= 6:
            rows.append((cols[0], " ".join(cols[5:])))
    assert rows, f"no rows in go tool pprof -top output:\n{text}"
    return rows


@pytest.fixture
def pprof_file(run_dynoprof, tmp_path):
    folded = tmp_path / "in.folded"
    folded.write_text(FOLDED)
    out = str(tmp_path / "out.pb.gz")
    rc, _, err = run_dynoprof("report", "-i", str(folded), "-o", out, "-q", timeout=60)
    assert rc == 0, f"report -o {out} failed (rc={rc}):\n{err}"
    return out


def test_go_pprof_top_and_labels(pprof_file):
    rows = top_rows(go_pprof("-top", pprof_file))
    assert rows[0][1] == "hot_loop", rows
    names = [name for _, name in rows]
    assert "json_dumps" in names and "do_syscall_64" in names, rows
    raw = go_pprof("-raw", pprof_file)
    assert "comm:[myapp]" in raw, raw
    assert "/srv/app.py" in raw, raw


def test_go_reencoded_profile_reads_back(run_dynoprof, pprof_file, tmp_path):
    """Go's encoder orders fields differently and may pack differently: the
    reader must not care."""
    go_copy = tmp_path / "go.pb.gz"
    go_copy.write_bytes(go_pprof("-proto", pprof_file))
    back = str(tmp_path / "back.folded")
    rc, _, err = run_dynoprof("report", "-i", str(go_copy), "-o", back, "-q", timeout=60)
    assert rc == 0, f"report -i {go_copy} failed (rc={rc}):\n{err}"
    before = parse_folded_file(str(tmp_path / "in.folded"))
    after = parse_folded_file(back)
    assert after.total() == before.total() == 100
    for fn in before.functions():
        assert after.count_with(fn) == before.count_with(fn), (fn, after.describe())
    assert after.comms() == before.comms()

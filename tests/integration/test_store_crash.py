"""The agent's history store survives kill -9 in the middle of writes.

A child process (tests/unit/fixtures/store_crash_writer.c, built here against
user/agent/store.c) stores windows in a loop and prints each one after its put
returned, with its blob's CRC. The test kills it with SIGKILL at random points,
several times over the same database, with a size limit small enough that
retention (deletes, incremental vacuum) runs all the time. Then the database
must pass integrity_check, and every window whose put was reported must be
there with the same bytes — unless retention removed it, which it does oldest
first, so nothing reported may be missing after the oldest window kept.
"""
import os
import random
import signal
import sqlite3
import subprocess
import time

import pytest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HELPER_SRC = os.path.join(REPO_ROOT, "tests", "unit", "fixtures", "store_crash_writer.c")
STORE_SRC = os.path.join(REPO_ROOT, "user", "agent", "store.c")
# What store.c links against from the rest of the tree.
STORE_DEPS = [os.path.join(REPO_ROOT, "user", "util", "errmsg.c"),
              os.path.join(REPO_ROOT, "user", "util", "clock.c"),
              os.path.join(REPO_ROOT, "user", "util", "outfile.c")]
RUNS = 12
MAX_BYTES = 3 << 20


@pytest.fixture(scope="module")
def writer(tmp_path_factory):
    exe = str(tmp_path_factory.mktemp("store_crash") / "store_crash_writer")
    cmd = ["gcc", "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE",
           "-I" + os.path.join(REPO_ROOT, "user"), HELPER_SRC, STORE_SRC, *STORE_DEPS,
           "-lsqlite3", "-lz", "-lpthread", "-o", exe]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return exe


def parse_reported(out):
    """{start_ns: (len, crc)} of the complete "W" lines (a line cut by the kill is not a report)."""
    reported = {}
    for line in out.split("\n")[:-1]:
        kind, start, length, crc = line.split()
        assert kind == "W"
        reported[int(start)] = (int(length), int(crc))
    return reported


def test_kill_9_loses_no_committed_window(writer, tmp_path):
    db = str(tmp_path / "history.db")
    t0 = (time.time_ns() // 10**9 - 3 * 3600) * 10**9
    rng = random.Random(1234)
    reported = {}
    last_start = None

    for run in range(RUNS):
        child = subprocess.Popen([writer, "write", db, str(t0), str(run), str(MAX_BYTES)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Let it get going (opening replays the last run's WAL), however busy
        # the machine, then kill it at a random point of its writes.
        first = [child.stdout.readline() for _ in range(3)]
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        out, err = child.communicate(timeout=10)
        assert child.returncode == -signal.SIGKILL, f"the writer stopped by itself: {err}"
        got = parse_reported("".join(first) + out)
        assert len(got) >= 3, f"run {run}: only {len(got)} windows written before the kill: {err}"
        reported.update(got)
        last_start = max(got)

    # The store's own reader: opens after the crash, checks, reads every window.
    res = subprocess.run([writer, "verify", db], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "CHECK ok"
    present = {}
    for line in lines[1:]:
        kind, start, length, crc, verdict = line.split()
        assert kind == "R"
        assert verdict == "ok", f"window {start}: blob differs from what was written"
        present[int(start)] = (int(length), int(crc))

    assert last_start in present, "the last reported window is missing"
    oldest = min(present)
    missing = [s for s in reported if s >= oldest and s not in present]
    assert not missing, f"{len(missing)} reported windows lost, e.g. {sorted(missing)[:5]}"
    changed = [s for s in reported if s in present and present[s] != reported[s]]
    assert not changed, f"{len(changed)} windows changed, e.g. {sorted(changed)[:5]}"
    # Retention really ran during the kills (else this tested less than it says).
    assert oldest > min(reported)

    # And an independent reader agrees the file is sound.
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        n = con.execute("SELECT count(*) FROM windows").fetchone()[0]
        assert n == len(present)
        orphans = con.execute("SELECT count(*) FROM groups WHERE window_id NOT IN "
                              "(SELECT id FROM windows)").fetchone()[0]
        assert orphans == 0
        used = con.execute("SELECT p.page_count - f.freelist_count FROM pragma_page_count() p, "
                           "pragma_freelist_count() f").fetchone()[0]
        page_size = con.execute("PRAGMA page_size").fetchone()[0]
        assert used * page_size <= MAX_BYTES + (64 << 10)
    finally:
        con.close()
    assert oct(os.stat(db).st_mode & 0o777) == "0o600"

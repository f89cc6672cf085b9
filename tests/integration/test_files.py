"""Files dynoprof is pointed at (issue 12, items 2 and 4), with the real binary as root:

- outputs: `record -o` refuses devices, FIFOs, sockets and directories with one
  `dynoprof:` line and leaves them as they were (same inode, same type); a symbolic
  link another user planted in a sticky world-writable directory is not followed;
  `-o -` still writes to standard output;
- the agent's database: /dev/null is refused and no /dev/null-journal appears;
- the agent's config: a long commented-out line stays a comment; a SIGHUP with a
  garbage file keeps every setting and logs why.
"""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest

import agentutil
from agentutil import Agent, free_port, wait_until
from conftest import parse_folded_text, run_dynoprof_cmd


def one_error_line(err, prefix="dynoprof: "):
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, "expected one error line, got:\n" + err
    assert lines[0].startswith(prefix), "error does not start with %r: %r" % (prefix, err)
    return lines[0]


def identity(path):
    """What must not change about a path: inode, type and device numbers."""
    st = os.lstat(path)
    return (st.st_dev, st.st_ino, stat.S_IFMT(st.st_mode), st.st_rdev)


def record_to(path, seconds="5"):
    """`record -o path`; returns (rc, stdout, stderr, elapsed seconds)."""
    start = time.monotonic()
    rc, out, err = run_dynoprof_cmd("record", "-a", "-d", seconds, "--format", "folded",
                                    "-o", path, timeout=60)
    return rc, out, err, time.monotonic() - start


# ---- record -o ----

@pytest.fixture
def specials(tmp_path):
    """{kind: path} of things that are not regular files, and their cleanup."""
    made = {"null": "/dev/null", "full": "/dev/full"}
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    made["fifo"] = fifo
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(tmp_path / "sock"))
    made["socket"] = str(tmp_path / "sock")
    made["directory"] = str(tmp_path)
    yield made
    sock.close()


@pytest.mark.parametrize("kind", ["null", "full", "fifo", "socket", "directory"])
def test_record_refuses_non_regular_output(specials, kind):
    path = specials[kind]
    before = identity(path)
    rc, _, err, elapsed = record_to(path)
    assert rc == 2, "record -o %s: rc=%d\n%s" % (path, rc, err)
    line = one_error_line(err)
    assert path in line and "not a regular file" in line, line
    assert elapsed < 4, "the output was refused only after capturing (%.1fs)" % elapsed
    assert identity(path) == before, "%s was changed" % path
    assert not os.path.exists("/dev/null-journal")


def test_record_to_fifo_with_reader_is_refused(tmp_path):
    """The case where a reader used to get 0 bytes: the reader now sees the FIFO
    untouched and dynoprof says why."""
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", fifo], stdout=subprocess.PIPE)
    try:
        rc, _, err, _ = record_to(fifo)
        assert rc == 2 and "a FIFO" in one_error_line(err), err
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    finally:
        with open(fifo, "w"):  # let the reader finish
            pass
        reader.communicate(timeout=10)


@pytest.fixture
def sticky_dir():
    """A sticky world-writable directory in /tmp (like /tmp itself) that the
    unprivileged user `nobody` can reach."""
    d = tempfile.mkdtemp(prefix="dynoprof-sticky-", dir="/tmp")
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d)


def as_nobody(*argv):
    subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] +
                   list(argv), check=True, timeout=30)


def test_record_does_not_follow_planted_symlink(sticky_dir, tmp_path):
    victim = tmp_path / "victim.conf"
    victim.write_text("precious\n")
    victim_mtime = os.stat(victim).st_mtime_ns
    planted = os.path.join(sticky_dir, "profile.folded")
    as_nobody("ln", "-s", str(victim), planted)
    assert os.lstat(planted).st_uid != 0

    rc, _, err, _ = record_to(planted)
    assert rc == 2, err
    line = one_error_line(err)
    assert "symbolic link" in line and planted in line, line
    assert victim.read_text() == "precious\n"
    assert os.stat(victim).st_mtime_ns == victim_mtime
    assert os.path.islink(planted)

    # A planted directory link in the middle of the path is not followed either.
    secret = tmp_path / "secret"
    secret.mkdir()
    as_nobody("ln", "-s", str(secret), os.path.join(sticky_dir, "reports"))
    rc, _, err, _ = record_to(os.path.join(sticky_dir, "reports", "p.folded"))
    assert rc == 2 and "symbolic link" in one_error_line(err), err
    assert os.listdir(secret) == []


def test_record_writes_new_file_and_own_link(sticky_dir, tmp_path):
    """A new file in the sticky directory, and a link root made there (nobody else
    can swap it), are written; no temporary file stays behind."""
    out = os.path.join(sticky_dir, "new.folded")
    rc, _, err, _ = record_to(out, seconds="1")
    assert rc == 0, err
    assert os.path.isfile(out) and not os.path.islink(out)
    target = tmp_path / "target.folded"
    target.write_text("old\n")
    link = os.path.join(sticky_dir, "mine.folded")
    os.symlink(str(target), link)
    rc, _, err, _ = record_to(link, seconds="1")
    assert rc == 0, err
    assert os.path.islink(link)
    assert target.read_text() != "old\n"
    parse_folded_text(target.read_text())  # folded text (maybe few stacks in 1 s)
    assert sorted(os.listdir(sticky_dir)) == ["mine.folded", "new.folded"]


def test_record_output_dash_is_stdout():
    # A command that burns CPU for sure: samples on a quiet machine too.
    rc, out, err = run_dynoprof_cmd(
        "record", "--format", "folded", "-o", "-", "--", "sh", "-c",
        "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done", timeout=60)
    assert rc == 0, err
    stacks = parse_folded_text(out)
    assert len(stacks) > 0, "no stacks on stdout:\n" + err


# ---- the agent's database ----

def test_agent_refuses_dev_null_database(tmp_path):
    assert not os.path.exists("/dev/null-journal"), "left over from an earlier run"
    before = identity("/dev/null")
    agent = Agent(str(tmp_path), config={"database": "/dev/null"})
    try:
        agent.launch()
        rc = agent.proc.wait(timeout=30)
        agent._reader.join(5)
    finally:
        agent.close()
    assert rc != 0, agent.stderr
    line = one_error_line(agent.stderr, "dynoprof agent: ")
    assert "/dev/null" in line and "not a regular file" in line, line
    assert not os.path.exists("/dev/null-journal")
    assert not os.path.exists("/dev/null-wal")
    assert identity("/dev/null") == before


def test_agent_refuses_database_in_shared_dir(sticky_dir, tmp_path):
    db = os.path.join(sticky_dir, "history.db")
    agent = Agent(str(tmp_path), config={"database": db})
    try:
        agent.launch()
        rc = agent.proc.wait(timeout=30)
        agent._reader.join(5)
    finally:
        agent.close()
    assert rc != 0, agent.stderr
    line = one_error_line(agent.stderr, "dynoprof agent: ")
    assert db in line and "other users" in line, line
    assert os.listdir(sticky_dir) == []


# ---- the agent's config file ----

def long_comment_hiding(setting, split_at=5 * 1023):
    """A comment line of over 5,000 bytes (a short note, then spaces) that ends in
    setting at byte split_at: an fgets() into 1,024 bytes read the middle pieces
    as blank lines and that tail as a setting of its own."""
    note = "# old: "
    return note + " " * (split_at - len(note)) + setting


def listen_addresses(port):
    """Local addresses of the TCP sockets listening on port (IPv4, /proc/net/tcp)."""
    found = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for row in f:
            fields = row.split()
            addr, hexport = fields[1].split(":")
            if fields[3] == "0A" and int(hexport, 16) == port:
                found.add(".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_agent_long_comment_lines_stay_comments(tmp_path, monkeypatch):
    port = free_port()
    text = "\n".join([
        "listen = 127.0.0.1:%d" % port,
        long_comment_hiding("listen_remote = true"),
        long_comment_hiding("listen = 0.0.0.0:%d" % port),
        long_comment_hiding("max_query_seconds = 2"),
        "database = %s" % (tmp_path / "long.db"),
        "window = 1",
    ]) + "\n"
    assert max(len(l) for l in text.splitlines()) >= 5000
    def write_text(path, config):
        with open(path, "w") as f:
            f.write(text)
    monkeypatch.setattr(agentutil, "write_config", write_text)
    agent = Agent(str(tmp_path), name="long")
    agent.port = port
    try:
        agent.start()
        assert listen_addresses(port) == {"127.0.0.1"}, listen_addresses(port)
        # max_query_seconds keeps its default (300): ?seconds=3 is served.
        status, body = agent.get("/debug/pprof/profile?seconds=3", timeout=30)
        assert status == 200, (status, body[:300], agent.stderr)
        agent.stop()
    finally:
        agent.close()


def test_agent_sighup_with_garbage_keeps_settings(tmp_path):
    agent = Agent(str(tmp_path), config={"max_query_seconds": 2}, name="hup")
    try:
        agent.start()
        status, body = agent.get("/debug/pprof/profile?seconds=3")
        assert status == 400 and b"2" in body, (status, body)
        good = open(agent.config_path, "rb").read()

        def reload_with(write, *why):
            mark = len(agent.lines)
            write()
            agent.signal(signal.SIGHUP)
            line = agent.wait_log(r"reload failed", start=mark)
            assert line, "no 'reload failed':\n" + agent.stderr
            assert line.startswith("dynoprof agent: ") and "keeping the old settings" in line
            assert any(w in line for w in why), line
            # Nothing claims success, and the old limit still holds.
            assert not any("reloaded" in l for l in agent.lines[mark:]), agent.stderr
            status, _ = agent.get("/debug/pprof/profile?seconds=3")
            assert status == 400, "max_query_seconds was reset after: %s" % line
            assert agent.healthz()["status"] == "ok"

        def put(data):
            def write():
                if os.path.isdir(agent.config_path):
                    os.rmdir(agent.config_path)
                with open(agent.config_path, "wb") as f:
                    f.write(data)
            return write

        def make_dir():
            os.remove(agent.config_path)
            os.mkdir(agent.config_path)

        reload_with(put(b"\0" * 4096), "NUL byte")
        reload_with(put(good + b"frequency = 50\0junk\n"), "NUL byte")
        reload_with(put(b"\xef\xbb\xbf" + good), "byte-order mark")
        reload_with(put(good + b"frequency = 50 junk\n"), "bad value")
        reload_with(put(good + b"#" + b"z" * 70000 + b"\n"), "longer than")
        reload_with(make_dir, "a directory")
        reload_with(put(good.replace(b"max_query_seconds = 2", b"max_query_seconds = 9")
                        + b"no_such_key = 1\n"), "no_such_key")

        # A good file is still taken, and says so.
        mark = len(agent.lines)
        put(good.replace(b"max_query_seconds = 2", b"max_query_seconds = 5"))()
        agent.signal(signal.SIGHUP)
        assert agent.wait_log(r"reloaded", start=mark), agent.stderr
        status, _ = agent.get("/debug/pprof/profile?seconds=3", timeout=30)
        assert status == 200
        agent.stop()
    finally:
        agent.close()


def test_agent_refuses_token_file_with_nul(tmp_path):
    """A NUL must not shorten the token to what precedes it ("s" would open the door)."""
    token = tmp_path / "token"
    token.write_bytes(b"s\0ecret-token\n")
    agent = Agent(str(tmp_path), config={"token_file": str(token)})
    try:
        agent.launch()
        rc = agent.proc.wait(timeout=30)
        agent._reader.join(5)
    finally:
        agent.close()
    assert rc != 0, agent.stderr
    line = one_error_line(agent.stderr, "dynoprof agent: ")
    assert "token_file" in line and "NUL byte" in line and str(token) in line, line


# ---- diff: outputs and --thresholds ----

@pytest.fixture
def two_profiles(tmp_path):
    """Two small folded profiles with endpoint and window labels."""
    text = "".join("app;[endpoint=/a];[window=%d];work %d\n" % (w, 100 + w) for w in range(1, 9))
    a, b = tmp_path / "a.folded", tmp_path / "b.folded"
    a.write_text(text)
    b.write_text(text)
    return str(a), str(b)


@pytest.mark.parametrize("flag", ["--json", "--svg"])
def test_diff_refuses_device_outputs(two_profiles, flag):
    before = identity("/dev/null")
    rc, out, err = run_dynoprof_cmd("diff", "-q", flag, "/dev/null", *two_profiles, timeout=60)
    assert rc == 2, (rc, err)
    assert "/dev/null" in one_error_line(err)
    assert out == "", "refused before comparing: " + out
    assert identity("/dev/null") == before


def test_diff_thresholds_file_is_read_whole(two_profiles, tmp_path):
    thresholds = tmp_path / "thresholds"
    # An fgets() into 512 bytes read the tail of the comment as a threshold.
    thresholds.write_text(long_comment_hiding("/a = 5", split_at=10 * 511) + "\n/a = 0.05\n")
    rc, out, err = run_dynoprof_cmd("diff", "--thresholds", str(thresholds), "--json", "-",
                                    *two_profiles, timeout=60)
    assert rc == 0, err
    doc = json.loads(out)
    assert [e["min_effect"] for e in doc["endpoints"]] == [0.05], doc
    thresholds.write_bytes(b"/a = 0.05\0junk\n")
    rc, _, err = run_dynoprof_cmd("diff", "--thresholds", str(thresholds), *two_profiles,
                                  timeout=60)
    assert rc == 2 and "NUL byte" in one_error_line(err), err
    thresholds.write_text("/a = 0.05 0.1\n")
    rc, _, err = run_dynoprof_cmd("diff", "--thresholds", str(thresholds), *two_profiles,
                                  timeout=60)
    assert rc == 2 and "ENDPOINT = MIN_EFFECT" in one_error_line(err), err


def test_report_refuses_device_output(two_profiles):
    before = identity("/dev/full")
    rc, _, err = run_dynoprof_cmd("report", "-q", "-i", two_profiles[0], "-o", "/dev/full",
                                  "--format", "folded", timeout=60)
    assert rc != 0 and "/dev/full" in one_error_line(err), (rc, err)
    assert identity("/dev/full") == before

"""Errors and signals: every failure is one `dynoprof: ...` line and a non-zero exit,
found before capturing where possible; Ctrl-C and SIGTERM still write the output."""
import os
import shutil
import signal
import tempfile
import time

import pytest

from conftest import parse_folded_file, proc_cpu_seconds, run_dynoprof_cmd, summary_samples


def assert_one_line_error(rc, err, *must_mention):
    assert rc != 0, f"expected a failure, got rc=0; stderr:\n{err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got:\n{err}"
    assert lines[0].startswith("dynoprof: "), f"error does not start with 'dynoprof: ': {err!r}"
    low = lines[0].lower()
    assert any(word.lower() in low for word in must_mention), (
        f"error should mention one of {must_mention}: {lines[0]!r}")


def test_not_root_is_refused():
    # A directory even nobody can write: the only thing wrong is the missing privileges.
    workdir = tempfile.mkdtemp(prefix="dynoprof-nonroot-", dir="/tmp")
    try:
        os.chmod(workdir, 0o777)
        rc, _, err = run_dynoprof_cmd(
            "record", "-d", "1", cwd=workdir, timeout=30,
            prefix=["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        assert_one_line_error(rc, err, "root", "CAP_BPF", "CAP_PERFMON")
        assert not os.path.exists(os.path.join(workdir, "profile.svg"))
    finally:
        shutil.rmtree(workdir)


def test_pid_not_found(run_dynoprof, outdir):
    pid = 999999
    assert not os.path.exists(f"/proc/{pid}"), "pid 999999 exists on this machine"
    rc, _, err = run_dynoprof("record", "-p", pid, "-d", "1", "-o",
                              os.path.join(outdir, "x.folded"), timeout=30)
    assert_one_line_error(rc, err, str(pid))


def test_tid_not_found(run_dynoprof, outdir):
    rc, _, err = run_dynoprof("record", "--tid", "999998", "-d", "1", "-o",
                              os.path.join(outdir, "x.folded"), timeout=30)
    assert_one_line_error(rc, err, "999998")


@pytest.mark.parametrize("freq", ["0", "100000", "-5", "abc"])
def test_bad_frequency(run_dynoprof, outdir, freq):
    start = time.monotonic()
    rc, _, err = run_dynoprof("record", "-a", "-F", freq, "-d", "5", "-o",
                              os.path.join(outdir, "x.folded"), timeout=30)
    assert_one_line_error(rc, err, "-F", "freq", "hz")
    assert time.monotonic() - start < 3, "bad -F was noticed only after capturing"


def test_unwritable_output_fails_before_capture(run_dynoprof):
    start = time.monotonic()
    rc, _, err = run_dynoprof("record", "-a", "-d", "10", "-o", "/nonexistent/x.svg",
                              timeout=30)
    elapsed = time.monotonic() - start
    assert_one_line_error(rc, err, "/nonexistent")
    assert elapsed < 3, f"took {elapsed:.1f}s: the output path must be checked before capturing"


def test_unknown_format(run_dynoprof, outdir):
    rc, _, err = run_dynoprof("record", "-a", "-d", "5", "--format", "bogus", "-o",
                              os.path.join(outdir, "x.out"), timeout=30)
    assert_one_line_error(rc, err, "bogus", "format")


def test_report_missing_input(run_dynoprof, outdir):
    missing = os.path.join(outdir, "missing.folded")
    rc, _, err = run_dynoprof("report", "-i", missing, timeout=30)
    assert_one_line_error(rc, err, missing)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_capture_and_writes_output(start_workload, outdir, sig):
    from apputil import Recording
    out = os.path.join(outdir, "x.folded")
    proc = start_workload("cpu_split", "-d", "120")
    rec = Recording("record", "-p", proc.pid, "-d", 60, "-o", out)
    try:
        # 3 s from its "sampling" line: on a loaded machine record may take
        # seconds to get there, and the CPU used before it is not sampled.
        rec.wait_started(timeout=60)
        cpu_before = proc_cpu_seconds(proc.pid)
        time.sleep(3)
        assert rec.proc.poll() is None, f"record exited early: {rec.stderr}"
        rec.proc.send_signal(sig)
        cpu_used = proc_cpu_seconds(proc.pid) - cpu_before
        sent = time.monotonic()
        returncode, err = rec.finish(timeout=30)
        stop_delay = time.monotonic() - sent
    finally:
        rec.kill()
    assert returncode == 0, f"record after {sig.name} exited {returncode}:\n{err}"
    assert stop_delay < 10, f"took {stop_delay:.1f}s to stop after {sig.name}"
    assert os.path.exists(out), f"no output written after {sig.name}; stderr:\n{err}"
    prof = parse_folded_file(out)
    assert prof.count_with("burn_alpha") > 0, prof.describe()
    # Samples up to the signal are kept: about 99 Hz times the CPU the workload used.
    assert prof.total() >= 0.5 * 99 * cpu_used, (
        f"{prof.total()} samples for {cpu_used:.2f} CPU s at 99 Hz\n{err}")
    assert summary_samples(err) is not None, f"no summary line after {sig.name}:\n{err}"


def test_tick_event_wants_a_frequency(run_dynoprof, outdir):
    rc, _, err = run_dynoprof("record", "-a", "-e", "tick", "-c", "1000000", "-d", "1", "-o",
                              os.path.join(outdir, "x.folded"), timeout=30)
    assert_one_line_error(rc, err, "-F")
    assert not os.path.exists(os.path.join(outdir, "x.folded"))


def test_unknown_event_lists_the_known_ones(run_dynoprof, outdir):
    rc, _, err = run_dynoprof("record", "-a", "-e", "bogus", "-d", "1", "-o",
                              os.path.join(outdir, "x.folded"), timeout=30)
    assert_one_line_error(rc, err, "bogus")
    for name in ("cpu-clock", "tick", "cycles", "instructions"):
        assert name in err, err

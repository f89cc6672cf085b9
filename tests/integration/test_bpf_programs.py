"""Each mode loads only the BPF programs it runs (issue 13): a program the
kernel would reject then blocks only the modes that use it, and unused ones
cost no verification. While `record` (or the agent) runs, the programs it
holds are read from the kernel: its /proc/PID/fdinfo names each BPF program
fd's id, and `bpftool prog show id N` names the program. The names must be
exactly the mode's.
"""
import ctypes
import json
import os
import re
import select
import shutil
import subprocess
import time

import pytest

from agentutil import Agent
from conftest import DEFAULT_TIMEOUT

PROCESS = {"on_exec", "on_exit"}
COUNTING = {"on_free", "snapshot_task_counts", "dump_task_counts", "flush_unsampled"}
# deps.sh installs bpftool (the build needs it too): missing is a failure.
BPFTOOL = shutil.which("bpftool") or "/usr/sbin/bpftool"


def bpf_program_names(pid):
    """Names of the BPF programs whose fds process pid holds (the kernel's view)."""
    ids = set()
    fd_dir = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(fd_dir):
        try:
            with open(os.path.join(fd_dir, fd)) as f:
                m = re.search(r"^prog_id:\s*(\d+)", f.read(), re.M)
        except OSError:
            continue  # closed meanwhile
        if m:
            ids.add(int(m.group(1)))
    names = set()
    for i in ids:
        out = subprocess.run([BPFTOOL, "prog", "show", "id", str(i), "--json"],
                             capture_output=True, text=True, timeout=30)
        if out.returncode == 0:
            names.add(json.loads(out.stdout)["name"])
    return names


def hardware_instructions_open():
    """Whether a hardware instructions counter opens on CPU 0 (the kernel
    decides: without one, counting has no event to read at every switch)."""
    libc = ctypes.CDLL(None, use_errno=True)
    attr = (ctypes.c_uint8 * 128)()
    ctypes.c_uint32.from_buffer(attr, 0).value = 0   # PERF_TYPE_HARDWARE
    ctypes.c_uint32.from_buffer(attr, 4).value = 128  # size
    ctypes.c_uint64.from_buffer(attr, 8).value = 1   # PERF_COUNT_HW_INSTRUCTIONS
    fd = libc.syscall(298, attr, -1, 0, -1, 8)       # perf_event_open, FD_CLOEXEC
    if fd < 0:
        return False
    os.close(fd)
    return True


def programs_while_recording(dynoprof_bin, args, tmp_path):
    """Starts `record args`, waits for its "sampling" line, and returns the
    BPF program names it holds, then stops it."""
    sleeper = subprocess.Popen(["sleep", "120"])
    argv = [a.replace("{pid}", str(sleeper.pid)) for a in args]
    out = str(tmp_path / "x.folded")
    rec = subprocess.Popen([dynoprof_bin, "record", "-d", "60", "-o", out] + argv,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        deadline = time.monotonic() + DEFAULT_TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([rec.stderr], [], [], 1)
            if ready:
                line = rec.stderr.readline()
                if not line:
                    break  # exited
                lines.append(line)
                if line.startswith("dynoprof: sampling"):
                    return bpf_program_names(rec.pid)
        pytest.fail("record did not start sampling (rc %s):\n%s" % (rec.poll(), "".join(lines)))
    finally:
        rec.kill()
        rec.wait()
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("args,expected", [
    (["-e", "cpu-clock", "--no-counts", "-p", "{pid}"], PROCESS | {"sample_stack"}),
    (["-e", "cpu-clock", "--counter-standin", "-p", "{pid}"],
     PROCESS | COUNTING | {"sample_stack", "on_switch"}),
    (["-e", "tick", "--counter-standin", "-p", "{pid}"],
     PROCESS | COUNTING | {"sample_on_tick", "on_switch"}),
    (["-e", "cpu-clock", "--no-counts", "--", "sleep", "60"],
     PROCESS | {"sample_stack", "on_fork"}),
], ids=["perf-event", "counting", "tick", "command"])
def test_record_loads_only_the_modes_programs(args, expected, dynoprof_bin, tmp_path):
    assert os.access(BPFTOOL, os.X_OK), "bpftool missing (scripts/deps.sh installs it)"
    got = programs_while_recording(dynoprof_bin, args, tmp_path)
    assert got == expected, "record %s holds %s, expected %s" % (
        " ".join(args), sorted(got), sorted(expected))


@pytest.mark.parametrize("event", ["cpu-clock", "tick"])
def test_agent_loads_only_its_programs(event, tmp_path):
    agent = Agent(str(tmp_path), config={"event": event})
    try:
        agent.start()
        got = bpf_program_names(agent.proc.pid)
    finally:
        agent.close()
    # The agent always counts; it reads counters at switches only when the
    # PMU has them (no software stand-in).
    expected = PROCESS | COUNTING | {"sample_stack" if event == "cpu-clock" else "sample_on_tick"}
    if hardware_instructions_open():
        expected |= {"on_switch"}
    assert got == expected, "agent (event %s) holds %s, expected %s\n%s" % (
        event, sorted(got), sorted(expected), agent.stderr)

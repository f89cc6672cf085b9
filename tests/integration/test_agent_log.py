"""The agent's log stays quiet in steady state: a warning about a process is
said once, whatever the number of windows and scans, and a stream of processes
with the same problem is summarised, not named one by one.

Real interpreters: Python 3.6 / 3.7 (unsupported: native frames only), found
at run time through `pyenv root` and PATH.
"""
import re
import subprocess
import time

import pytest

from agentutil import Agent, wait_until
from pyutil import find_interpreters

pytestmark = pytest.mark.slow

BUSY = r"""
import sys, time
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[1])
acc = 0
while time.monotonic() < end:
    for i in range(10000):
        acc = (acc * 31 + i) & 0xFFFFFFFF
"""


def unsupported_interpreters():
    """{minor: path} of CPython 3.6 and 3.7 interpreters (pyutil.find_interpreters:
    `pyenv root`, PATH, /usr/bin)."""
    found = {}
    for interp in find_interpreters():
        if interp.minor in ((3, 6), (3, 7)) and not interp.root:
            found.setdefault(interp.minor[1], interp.path)
    return found


def start_busy(path, script, seconds):
    proc = subprocess.Popen([path, script, str(seconds)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "ready", (path, line, proc.stderr.read())
    return proc


def mentions(text, pid):
    return len(re.findall(r"\bPID %d\b" % pid, text))


def test_unsupported_python_is_said_once_then_summarised(tmp_path):
    interpreters = unsupported_interpreters()
    if not interpreters:
        pytest.skip("no Python 3.6 or 3.7 interpreter (pyenv root, PATH)")
    script = str(tmp_path / "busy.py")
    with open(script, "w") as f:
        f.write(BUSY)
    old_minor = min(interpreters)
    agent = Agent(str(tmp_path), config={"frequency": 99})
    procs = []
    try:
        # Running before the agent: found by its start-up scan, then sampled
        # in every window.
        steady = start_busy(interpreters[old_minor], script, 600)
        procs.append(steady)
        agent.start()
        first = agent.healthz()["windows"]
        assert wait_until(lambda: agent.healthz()["windows"] >= first + 5, 30, 0.5), \
            agent.stderr
        text = agent.stderr
        assert mentions(text, steady.pid) == 1, (
            "PID %d of Python 3.%d should be named exactly once:\n%s"
            % (steady.pid, old_minor, text))
        assert "3.%d is not supported" % old_minor in text, text

        # A stream of short-lived processes with the same problem: a few
        # named, the rest counted and summarised.
        burst = []
        for _ in range(WARN_BURST):
            p = start_busy(interpreters[old_minor], script, 0.4)
            procs.append(p)
            p.wait(timeout=60)
            burst.append(p.pid)
        n = agent.healthz()["windows"]
        assert wait_until(lambda: re.search(r"dynoprof agent: \d+ more: Python processes "
                                            r"showing native frames only", agent.stderr),
                          30, 0.5), agent.stderr
        wait_until(lambda: agent.healthz()["windows"] >= n + 3, 30, 0.5)
        text = agent.stderr
        for pid in burst + [steady.pid]:
            assert mentions(text, pid) <= 1, "PID %d named twice:\n%s" % (pid, text)
        named = [line for line in text.splitlines()
                 if "3.%d is not supported" % old_minor in line and "PID" in line]
        assert len(named) <= 3, "more than 3 processes named:\n" + text
        # Steady state: no line said twice.
        lines = [l for l in text.splitlines() if "more:" not in l]
        repeated = {l for l in lines if lines.count(l) > 1}
        assert not repeated, "repeated lines:\n%s" % "\n".join(sorted(repeated))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        stderr = agent.stop() if agent.alive() else agent.stderr
    print(stderr)


WARN_BURST = 6

"""A known hot line for the dynoprof Python integration tests.

usage: python3 known_line.py OUT_JSON DURATION_S

hot_line() spends its time in the one-line loop marked `# HOT-LINE`; the tests read
that line number from this file. It is called from the method Looper.spin, whose
qualified name (co_qualname, 3.11+) is "Looper.spin" and plain name "spin". Writes
{"pid": n, "version": str, "calls": n, "co_filename": hot_line's co_filename} to
OUT_JSON after DURATION_S or on SIGTERM; prints "ready" once the hot loop runs.

Runs unchanged on CPython 3.6 .. 3.13 (the unsupported 3.6/3.7 test uses it too).
"""
import json
import os
import signal
import sys
import time

stopping = []


def hot_line(n):
    acc = 0
    for i in range(n): acc = (acc * 31 + i) % 1000003  # HOT-LINE
    return acc


class Looper:
    def __init__(self):
        self.calls = 0

    def spin(self, deadline):
        while not stopping and time.monotonic() < deadline:
            hot_line(20000)
            self.calls += 1
            if self.calls == 1:
                print("ready", flush=True)


def main():
    out_path, duration = sys.argv[1], float(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    looper = Looper()
    looper.spin(time.monotonic() + duration)
    with open(out_path + ".tmp", "w") as f:
        json.dump({"pid": os.getpid(), "version": sys.version.split()[0],
                   "calls": looper.calls, "co_filename": hot_line.__code__.co_filename}, f)
    os.rename(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main()

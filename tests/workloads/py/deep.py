"""A Python stack deeper than dynoprof's frame limit (160 Python frames).

usage: python3 deep.py OUT_JSON DURATION_S

deep_recurse() recurses DEPTH (300) levels and burns CPU at the bottom in deep_bottom(),
so a sample's innermost 160 Python frames are deep_bottom + 159 deep_recurse, and the
outer ones (main, <module>, the rest of deep_recurse) are beyond the limit. Writes
{"pid": n, "depth": 300, "version": str} to OUT_JSON after DURATION_S or on SIGTERM;
prints "ready" once the bottom burns.
"""
import json
import os
import signal
import sys
import time

DEPTH = 300
stopping = []


def deep_bottom(deadline):
    announced = False
    x = 0
    while not stopping and time.monotonic() < deadline:
        for i in range(20000):
            x = (x * 1103515245 + i) & 0xFFFFFFFF
        if not announced:
            print("ready", flush=True)
            announced = True
    return x


def deep_recurse(depth, deadline):
    if depth > 1:
        return deep_recurse(depth - 1, deadline)
    return deep_bottom(deadline)


def main():
    out_path, duration = sys.argv[1], float(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    deep_recurse(DEPTH, time.monotonic() + duration)
    with open(out_path + ".tmp", "w") as f:
        json.dump({"pid": os.getpid(), "depth": DEPTH, "version": sys.version.split()[0]}, f)
    os.rename(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main()

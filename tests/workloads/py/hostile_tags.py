"""A process carrying as many tag labels as it can (tests/integration/test_hostile.py).

    hostile_tags.py DURATION TRUTH_JSON

Environment tags come from the environment the test gives it (DYNOPROF_TAGS
etc.). Through libdynotag it sets HOSTILE_PROCESS_TAGS process tags p0..pN-1
(default 8; none is `endpoint`), and a worker thread sets HOSTILE_THREAD_TAGS
thread tags t0..tN-1 (default 8) plus endpoint=/worker, then spins in
`worker_spin`. The main thread serves counted requests of /main
(request_begin/request_end) spinning in `main_spin`. Values are
HOSTILE_VALUE_BYTES long when set (the library cuts them), with invalid UTF-8
when HOSTILE_INVALID=1.

Prints "ready" once every tag is set; at the end writes TRUTH_JSON:
{"pid", "cpu_s": time.process_time(), "requests": main's request count}.
"""
import json
import os
import sys
import threading
import time

import dynotag


def value(tag):
    size = int(os.environ.get("HOSTILE_VALUE_BYTES", "0"))
    text = "v-" + tag
    if os.environ.get("HOSTILE_INVALID") == "1":
        text = text.encode() + b"\xff\xfe\x01\xc0\xaf"
        return text + b"x" * max(0, size - len(text))
    return text + "x" * max(0, size - len(text))


def spin(n):
    s = 0
    for i in range(n):
        s += i * i
    return s


def running(deadline):
    """Until the deadline (wall), and past it until the process has used a
    quarter of the duration in CPU (a loaded machine starves it: the tests
    need samples), at most 4x the duration."""
    now = time.monotonic()
    return now < deadline[0] or (time.process_time() < deadline[1] and now < deadline[2])


def worker_spin(deadline):
    while running(deadline):
        spin(20000)


def worker(deadline, ready):
    for i in range(int(os.environ.get("HOSTILE_THREAD_TAGS", "8"))):
        dynotag.set("t%d" % i, value("t%d" % i))
    dynotag.set_endpoint("/worker")
    ready.set()
    worker_spin(deadline)


def main_spin(n):
    return spin(n)


def main():
    duration, truth_path = float(sys.argv[1]), sys.argv[2]
    for i in range(int(os.environ.get("HOSTILE_PROCESS_TAGS", "8"))):
        dynotag.set_process("p%d" % i, value("p%d" % i))
    start = time.monotonic()
    deadline = (start + duration, duration / 4, start + 4 * duration)
    ready = threading.Event()
    t = threading.Thread(target=worker, args=(deadline, ready))
    t.start()
    ready.wait()
    print("ready", flush=True)
    requests = 0
    while running(deadline):
        dynotag.request_begin("/main")
        main_spin(20000)
        dynotag.request_end()
        requests += 1
    t.join()
    with open(truth_path, "w") as f:
        json.dump({"pid": os.getpid(), "cpu_s": time.process_time(),
                   "requests": requests}, f)


if __name__ == "__main__":
    main()

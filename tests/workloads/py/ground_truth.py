"""Ground-truth CPU split for the dynoprof Python integration tests.

usage: python3 ground_truth.py OUT_JSON DURATION_S

The main thread runs rounds of leaf_alpha / leaf_beta / leaf_gamma under their own
callers (5:3:2 work units of ~1 ms each) plus a 150-deep recursion `recurse` ending in
deep_leaf (2 units); a second thread runs thread_worker -> thread_leaf (~2 ms of work,
then a 4 ms sleep). Each leaf's own CPU time is measured with time.thread_time() of the
thread that runs it. After DURATION_S seconds, or on SIGTERM, the measured seconds and
the thread ids are written to OUT_JSON as
  {"leaf_alpha": s, "leaf_beta": s, "leaf_gamma": s, "deep_leaf": s, "thread_leaf": s,
   "main_tid": n, "worker_tid": n, "worker_comm": str or null, "pid": n, ...}
"ready" is printed on stdout once both threads run their hot loops. On SIGUSR1 the
measured seconds so far are appended as one JSON line to OUT_JSON.snapshots, so a
test can take the truth over exactly the period it profiled (the difference of two).

Runs unchanged on CPython 3.8 .. 3.13 (no syntax newer than 3.8).
"""
import json
import os
import signal
import sys
import threading
import time

try:  # imported up front: the profiled hot loops must not import anything
    import ctypes
except ImportError:
    ctypes = None

RECURSION_DEPTH = 150        # exactly this many `recurse` frames above deep_leaf
WORKER_OS_NAME = "gt-worker"  # kernel comm of the worker thread (prctl), <= 15 chars
ROUND = (("alpha", 5), ("beta", 3), ("gamma", 2), ("deep", 2))  # work units per phase

cpu_seconds = {"leaf_alpha": 0.0, "leaf_beta": 0.0, "leaf_gamma": 0.0,
               "deep_leaf": 0.0, "thread_leaf": 0.0}
stop_event = threading.Event()
worker_running = threading.Event()
iters_per_unit = 1000
worker_tid = None


def leaf_alpha(n):
    x = 0
    for i in range(n):
        x = (x * 1103515245 + i) & 0xFFFFFFFF
    return x


def leaf_beta(n):
    x = 0
    for i in range(n):
        x = (x * 1103515245 + i) & 0xFFFFFFFF
    return x


def leaf_gamma(n):
    x = 0
    for i in range(n):
        x = (x * 1103515245 + i) & 0xFFFFFFFF
    return x


def deep_leaf(n):
    x = 0
    for i in range(n):
        x = (x * 1103515245 + i) & 0xFFFFFFFF
    return x


def thread_leaf(n):
    x = 0
    for i in range(n):
        x = (x * 1103515245 + i) & 0xFFFFFFFF
    return x


def caller_alpha(units):
    start = time.thread_time()
    leaf_alpha(units * iters_per_unit)
    cpu_seconds["leaf_alpha"] += time.thread_time() - start


def caller_beta(units):
    start = time.thread_time()
    leaf_beta(units * iters_per_unit)
    cpu_seconds["leaf_beta"] += time.thread_time() - start


def caller_gamma(units):
    start = time.thread_time()
    leaf_gamma(units * iters_per_unit)
    cpu_seconds["leaf_gamma"] += time.thread_time() - start


def recurse(depth, units):
    if depth > 1:
        return recurse(depth - 1, units)
    start = time.thread_time()
    deep_leaf(units * iters_per_unit)
    cpu_seconds["deep_leaf"] += time.thread_time() - start
    return 0


def name_this_thread(name):
    """Sets the kernel comm of the calling thread; returns False when impossible."""
    if ctypes is None:
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_NAME = 15
        return libc.prctl(PR_SET_NAME, name.encode(), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def thread_worker(named):
    global worker_tid
    worker_tid = threading.get_native_id()
    if name_this_thread(WORKER_OS_NAME):
        named.append(WORKER_OS_NAME)
    worker_running.set()
    while not stop_event.is_set():
        start = time.thread_time()
        thread_leaf(2 * iters_per_unit)
        cpu_seconds["thread_leaf"] += time.thread_time() - start
        time.sleep(0.004)


def calibrate():
    """Loop iterations of one ~1 ms work unit on this interpreter."""
    n = 20000
    best = None
    for _ in range(5):
        start = time.thread_time()
        leaf_alpha(n)
        elapsed = time.thread_time() - start
        if elapsed > 0 and (best is None or elapsed < best):
            best = elapsed
    return max(100, int(n * 0.001 / (best or 0.001)))


def run_round():
    for phase, units in ROUND:
        if phase == "alpha":
            caller_alpha(units)
        elif phase == "beta":
            caller_beta(units)
        elif phase == "gamma":
            caller_gamma(units)
        else:
            recurse(RECURSION_DEPTH, units)


def append_snapshot(path):
    """Appends the measured seconds so far to path as one JSON line."""
    with open(path, "a") as f:
        f.write(json.dumps(dict(cpu_seconds)) + "\n")


def main():
    global iters_per_unit
    out_path, duration = sys.argv[1], float(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_event.set())
    signal.signal(signal.SIGUSR1,
                  lambda signum, frame: append_snapshot(out_path + ".snapshots"))
    iters_per_unit = calibrate()
    named = []
    worker = threading.Thread(target=thread_worker, args=(named,), name="gt-worker",
                              daemon=True)
    worker.start()
    worker_running.wait()
    run_round()
    print("ready", flush=True)
    deadline = time.monotonic() + duration
    while not stop_event.is_set() and time.monotonic() < deadline:
        run_round()
    stop_event.set()
    worker.join()
    truth = dict(cpu_seconds)
    truth.update(main_tid=threading.get_native_id(), worker_tid=worker_tid,
                 worker_comm=named[0] if named else None, pid=os.getpid(),
                 iters_per_unit=iters_per_unit, version=sys.version.split()[0])
    with open(out_path + ".tmp", "w") as f:
        json.dump(truth, f)
    os.rename(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main()

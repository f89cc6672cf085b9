"""A tagged Python workload: "requests" to endpoints of known CPU cost, counted
and tagged through dynotag, which measures the CPU each endpoint really used.

    tagged_app.py DURATION [TRUTH_JSON]

Runs for DURATION seconds (fractions allowed; until SIGTERM/SIGINT if 0), then
writes TRUTH_JSON (when given) and exits 0. It prints "ready" on stdout once
every endpoint has served a request (imports done, code warm).

Each request runs inside `dynotag.request(ENDPOINT)` (the endpoint tag plus one
counted request) and calls the endpoint's own function (handle_light,
handle_heavy, handle_other), which spins a pure-Python loop in `spin`, so
stacks tell endpoints apart by function too. Endpoints are served in a random
order (each equally often on average) and each request's loop length varies
by up to +-10% around its nominal count (the mean is exact): a strictly
periodic program would alias with the profiler's fixed sampling period (at
199 Hz a 5.0 ms light+heavy cycle puts whole seconds of samples into one
endpoint), which real services, being irregular, do not.

Environment:
  TAGGED_APP_ENDPOINTS  endpoint=units list, default "/light=1,/heavy=3";
                        at most three endpoints (one per handler function, in
                        order: handle_light, handle_heavy, handle_other)
  TAGGED_APP_EXTRA      endpoint=fraction list of extra work, e.g. "/heavy=0.15"
                        (15% more loop iterations per request on /heavy)
  TAGGED_APP_UNIT       loop iterations per unit, default 20000 (about 1 ms)
  TAGGED_APP_SLEEP_MS   sleep between requests (default 0: always busy)
  TAGGED_APP_CPU        1: DURATION counts the process's CPU seconds
                        (time.process_time), not wall seconds, with 20 x DURATION
                        of wall time its bound: the same work on a busy machine
  TAGGED_APP_SEED       random seed (default: the pid)
  DYNOPROF_SERVICE, DYNOPROF_COMMIT  read by dynoprof from the environment

SIGUSR1 writes the truth so far to TRUTH_JSON.<n> (n = 1, 2, ...: the n-th
signal), so a test can take the truth of exactly the time it profiled.

Truth (TRUTH_JSON): {"pid": N, "endpoints": {ENDPOINT: {"requests": n,
"cpu_s": thread CPU seconds inside the requests, "iterations": nominal per
request}},
"cpu_s": the process's whole CPU time (time.process_time)}.
"""
import json
import os
import random
import signal
import sys
import time

import dynotag


def spin(n):
    acc = 0
    for i in range(n):
        acc = (acc * 31 + i) & 0xFFFFFFFF
    return acc


def handle_light(n):
    return spin(n)


def handle_heavy(n):
    return spin(n)


def handle_other(n):
    return spin(n)


HANDLERS = (handle_light, handle_heavy, handle_other)


def parse_pairs(text, convert):
    pairs = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = item.rpartition("=")
        if not sep or not name:
            sys.exit("tagged_app: bad item %r (want endpoint=value)" % item)
        pairs.append((name, convert(value)))
    return pairs


stopping = False
snapshots = 0
stats = {}          # endpoint -> {"requests", "cpu_s", "iterations"}
truth_path = None


def write_truth(path):
    doc = {"pid": os.getpid(), "endpoints": stats, "cpu_s": time.process_time()}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.rename(tmp, path)


def on_signal(signum, frame):
    global stopping
    stopping = True


def on_snapshot(signum, frame):
    global snapshots
    snapshots += 1
    if truth_path:
        write_truth("%s.%d" % (truth_path, snapshots))


def main():
    global truth_path
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: tagged_app.py DURATION [TRUTH_JSON]")
    duration = float(sys.argv[1])
    truth_path = sys.argv[2] if len(sys.argv) == 3 else None
    endpoints = parse_pairs(os.environ.get("TAGGED_APP_ENDPOINTS", "/light=1,/heavy=3"), float)
    if not 1 <= len(endpoints) <= len(HANDLERS):
        sys.exit("tagged_app: 1 to %d endpoints" % len(HANDLERS))
    extra = dict(parse_pairs(os.environ.get("TAGGED_APP_EXTRA", ""), float))
    unit = int(os.environ.get("TAGGED_APP_UNIT", "20000"))
    pause = float(os.environ.get("TAGGED_APP_SLEEP_MS", "0")) / 1000.0
    rng = random.Random(int(os.environ.get("TAGGED_APP_SEED", os.getpid())))

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGUSR1, on_snapshot)

    # (endpoint, request context, handler, iterations) per endpoint.
    plan = []
    for (name, units), handler in zip(endpoints, HANDLERS):
        iterations = int(round(units * unit * (1.0 + extra.get(name, 0.0))))
        plan.append((name, dynotag.request(name), handler, iterations))
    for name, _, _, it in plan:
        stats[name] = {"requests": 0, "cpu_s": 0.0, "iterations": it}

    thread_time = time.thread_time
    deadline = time.monotonic() + duration if duration > 0 else None
    cpu_budget = None
    if duration > 0 and os.environ.get("TAGGED_APP_CPU") == "1":
        cpu_budget = time.process_time() + duration
        deadline = time.monotonic() + 20 * duration
    ready = False
    # Warm-up: every endpoint once, in order.
    queue = list(plan)
    while not stopping:
        if not queue:
            queue = [rng.choice(plan) for _ in range(64)]
        batch, queue = queue, []
        for name, request, handler, iterations in batch:
            n = int(iterations * (0.9 + 0.2 * rng.random()))
            with request:
                t0 = thread_time()
                handler(n)
                spent = thread_time() - t0
                # Counted inside the request: a snapshot never sees a
                # request's CPU without the request.
                entry = stats[name]
                entry["requests"] += 1
                entry["cpu_s"] += spent
            if pause:
                time.sleep(pause)
        if not ready:
            print("ready", flush=True)
            ready = True
        if deadline is not None and time.monotonic() >= deadline:
            break
        if cpu_budget is not None and time.process_time() >= cpu_budget:
            break

    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    if truth_path:
        write_truth(truth_path)


if __name__ == "__main__":
    main()

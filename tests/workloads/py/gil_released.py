"""A thread hashing and compressing with the GIL released, for dynoprof's Python tests.

usage: python3 gil_released.py OUT_JSON DURATION_S [HASHER_COMM]

The thread "hasher" (kernel comm set with prctl to HASHER_COMM, default "hasher", so
the profile tells its samples apart) runs hash_worker(), which calls hashlib.sha256
over a 64 MiB buffer and zlib.compress over a 4 MiB slice in a loop: CPython releases
the GIL inside both, so the thread's samples are in libcrypto / libz called from the
Python frame hash_worker. Meanwhile the main thread runs Python code (gil_spinner,
~2 ms, then an 8 ms sleep) holding the GIL. Writes {"pid": n, "hasher_tid": n,
"hasher_comm": str or null, "hash_seconds": s, "compress_seconds": s, "version": str}
to OUT_JSON after DURATION_S or on SIGTERM; prints "ready" once both threads run.
"""
import hashlib
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
import zlib

DEFAULT_HASHER_COMM = "hasher"
BUFFER_BYTES = 64 << 20
COMPRESS_BYTES = 4 << 20
stop_event = threading.Event()
truth = {"hash_seconds": 0.0, "compress_seconds": 0.0, "hasher_tid": None,
         "hasher_comm": None}
hasher_running = threading.Event()


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


def hash_worker(buf):
    compressible = buf[:COMPRESS_BYTES]
    while not stop_event.is_set():
        start = time.thread_time()
        hashlib.sha256(buf).digest()
        middle = time.thread_time()
        zlib.compress(compressible, 1)
        truth["hash_seconds"] += middle - start
        truth["compress_seconds"] += time.thread_time() - middle
        hasher_running.set()


def hasher_main(comm):
    truth["hasher_tid"] = threading.get_native_id()
    if name_this_thread(comm):
        truth["hasher_comm"] = comm
    # Half random (incompressible), half text: zlib has work either way.
    block = os.urandom(1 << 20) + b"the quick brown fox jumps over the lazy dog " * 23831
    buf = (block * (BUFFER_BYTES // len(block) + 1))[:BUFFER_BYTES]
    hash_worker(buf)


def gil_spinner():
    x = 0
    for i in range(20000):
        x = (x * 1103515245 + i) & 0xFFFFFFFF
    return x


def main():
    out_path, duration = sys.argv[1], float(sys.argv[2])
    comm = sys.argv[3][:15] if len(sys.argv) > 3 else DEFAULT_HASHER_COMM
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_event.set())
    hasher = threading.Thread(target=hasher_main, args=(comm,), name="hasher", daemon=True)
    hasher.start()
    hasher_running.wait()
    print("ready", flush=True)
    deadline = time.monotonic() + duration
    while not stop_event.is_set() and time.monotonic() < deadline:
        gil_spinner()
        time.sleep(0.008)
    stop_event.set()
    hasher.join()
    truth.update(pid=os.getpid(), version=sys.version.split()[0])
    with open(out_path + ".tmp", "w") as f:
        json.dump(truth, f)
    os.rename(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main()

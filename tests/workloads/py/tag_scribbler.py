"""A process that scribbles over its own libdynotag records
(tests/integration/test_hostile.py): what dynoprof reads from it is garbage.

    tag_scribbler.py DURATION TRUTH_JSON

In a loop, while spinning in `scribble_spin` between writes, it writes into
the memory libdynotag shares with dynoprof (layout: bpf/dynotag_abi.h):
  - the process record and its thread's record: torn (odd seq left), counts
    up to 2^32-1 (more pairs than a record holds), random string ids;
  - the bytes of published strings: invalid UTF-8 and control characters;
  - the runtime's table fields: string_count/arena_used up to 2^32-1, the
    strings and arena pointers pointing nowhere (restored the next round).
Prints "ready" when it starts scribbling; at the end writes TRUTH_JSON
{"pid", "cpu_s": time.process_time(), "rounds"}.
"""
import ctypes
import json
import os
import random
import sys
import time

import dynotag

U32, U64 = ctypes.c_uint32, ctypes.c_uint64


class Pair(ctypes.Structure):
    _fields_ = [("key", U32), ("value", U32)]


class Record(ctypes.Structure):
    _fields_ = [("seq", U32), ("count", U32), ("tags", Pair * 9)]


class Runtime(ctypes.Structure):
    _fields_ = [("magic", U64), ("abi_version", U32), ("tss_key", ctypes.c_int32),
                ("strings", U64), ("arena", U64), ("requests", U64),
                ("string_count", U32), ("string_capacity", U32), ("arena_size", U32),
                ("arena_used", U32), ("process", Record)]


assert ctypes.sizeof(Record) == 80 and ctypes.sizeof(Runtime) == 136


def scribble_spin(n):
    s = 0
    for i in range(n):
        s += i ^ (i >> 3)
    return s


def scribble_record(rec, rng, phase):
    if phase == 0:    # torn: a writer that never finishes
        rec.seq = rng.getrandbits(32) | 1
    else:             # consistent garbage
        rec.seq = rng.getrandbits(32) & ~1
    rec.count = rng.choice([0, 9, 10, 200, 0xffffffff, rng.getrandbits(32)])
    for i in range(9):
        rec.tags[i].key = rng.choice([0, 1, 2, 3, rng.getrandbits(32), 0xffffffff])
        rec.tags[i].value = rng.choice([0, 1, 2, 3, 4, rng.getrandbits(32)])


def main():
    duration, truth_path = float(sys.argv[1]), sys.argv[2]
    rng = random.Random(os.getpid())
    dynotag.set_process("service_hint", "scribbler")
    dynotag.set("k", "v")  # creates this thread's record
    lib = ctypes.CDLL(os.environ["DYNOTAG_LIBRARY"])
    rt = Runtime.in_dll(lib, "dynotag_runtime")
    libc = ctypes.CDLL(None)
    libc.pthread_getspecific.restype = ctypes.c_void_p
    libc.pthread_getspecific.argtypes = [ctypes.c_uint]
    thread_rec = Record.from_address(libc.pthread_getspecific(rt.tss_key))
    saved = (rt.strings, rt.arena, rt.string_count, rt.arena_used)
    strings = (Pair * rt.string_count).from_address(rt.strings)  # (offset, length)
    print("ready", flush=True)
    start = time.monotonic()
    rounds = 0
    # Until the duration (wall), and past it until a quarter of it was spent in
    # CPU (a loaded machine starves the process: the tests need samples), at
    # most 4x the duration.
    while (time.monotonic() < start + duration or
           (time.process_time() < duration / 4 and time.monotonic() < start + 4 * duration)):
        phase = rounds % 4
        scribble_record(rt.process, rng, phase % 2)
        scribble_record(thread_rec, rng, phase % 2)
        # Published strings change under the reader: invalid bytes.
        for i in range(len(strings)):
            off, length = strings[i].key, strings[i].value
            garbage = bytes(rng.choice([0xff, 0xfe, 0x01, 0x1b, 0xc0, 0x80, 0x0a, 0x41])
                            for _ in range(length))
            ctypes.memmove(saved[1] + off, garbage, length)
        if phase == 3:  # the table itself lies
            rt.string_count = rng.choice([0xffffffff, rng.getrandbits(32)])
            rt.arena_used = rng.choice([0xffffffff, rng.getrandbits(32)])
            rt.strings = rng.getrandbits(64)
            rt.arena = rng.getrandbits(47)
        else:
            rt.strings, rt.arena, rt.string_count, rt.arena_used = saved
        scribble_spin(30000)
        rounds += 1
    with open(truth_path, "w") as f:
        json.dump({"pid": os.getpid(), "cpu_s": time.process_time(), "rounds": rounds}, f)


if __name__ == "__main__":
    main()

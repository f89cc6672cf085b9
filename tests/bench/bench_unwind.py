#!/usr/bin/python3
"""Native unwinding benchmark (`make bench-unwind`, part of `make bench`; not a test).

Three tables:

1. BPF cost per sample: run_time_ns / run_cnt of dynoprof's perf-event program
   (kernel BPF statistics, turned on for the run with BPF_ENABLE_STATS and off
   when its fd closes - no sysctl) while `record -p` samples at 999 Hz:
     - unwind_deep built -O2 -fomit-frame-pointer, recursing to a fixed depth
       (30 native frames with libc's), with .eh_frame CFI and with
       --no-eh-frame (frame pointers only: the leaf and little more), and the
       same program built with frame pointers under --no-eh-frame (30 frames
       walked by frame pointers: the fast path at the same depth);
     - Debian's python3.11 with 100 Python frames calling zlib.compress (the
       native chain below the Python leaf through libz, no frame pointers),
       with CFI and with --no-eh-frame.
   The program runs on every CPU's perf event and drops other processes'
   samples at its start, so its run_cnt mixes the target's samples with
   cheap filtered runs. The target's own cost is
       (run_time - (run_cnt - n) * c_filtered) / n
   with n the samples in the profile and c_filtered measured in each round by
   `record -p` of a sleeping process (every run filtered), applied to that
   round's runs. The
   program's final figures are read after dynoprof exits, through an fd to it
   this script holds (BPF_PROG_GET_FD_BY_ID), so the profile and the counters
   cover the same samples.

2. Slowdown of Debian `xz -9 -T1` compressing a fixed input (generated
   deterministically, --xz-mb MB of log-like text) at 99 and 999 Hz: no profiler,
   `dynoprof record -p` with CFI, with --no-eh-frame, and `perf record
   --call-graph dwarf -p`. xz is forked held at a gate, the profiler attached to
   it and ready (dynoprof's "sampling" line; perf started disabled and enabled
   through its control FIFO, acknowledged), then released; its wall time runs
   from release to exit and its CPU time is its own rusage (wait4), which
   carries the sampling interrupt's and the BPF program's cost (charged to the
   interrupted task) but not the host's steal time. Every round runs every
   mode once, in a rotated order; slowdowns are per-round ratios to the same
   round's unprofiled run, reported as median [min, max] over the rounds, so a
   busy host's noise shows in the spread. The profiler's own CPU time (its
   rusage, start to exit, incl. writing its output) is reported beside.

3. Unwind table build time and memory for libpython (pyenv's newest shared
   libpython and Debian's python3.11, which links it statically), libcrypto.so.3
   and ELF files of >= 100 MB found on the host at run time (chromium's, libLLVM):
   .output/bench/bench_cfi_build times cfi_table__from_fd() - the registry's
   per-file build - and reports rows (8 bytes each in the BPF row table) and
   its own RSS change, one process per file; beside it, dynoprof's own RSS
   change once `record -p` of a python3.11 that maps the file executable is
   sampling, against one that does not.

The load average is printed beside every table: this host is shared.

Usage: bench_unwind.py [--rounds N] [--seconds S] [--xz-mb MB] [--only cost,xz,tables]
Root; `make bench-unwind` builds what it needs. A missing tool is an error.
"""
import argparse
import ctypes
import glob
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DYNOPROF = os.path.join(REPO, "dynoprof")
BENCH_BIN = os.path.join(REPO, ".output", "bench")
NOFP_DEEP = os.path.join(BENCH_BIN, "unwind_deep_nofp")
FP_DEEP = os.path.join(BENCH_BIN, "unwind_deep_fp")
CFI_BUILD = os.path.join(BENCH_BIN, "bench_cfi_build")

NATIVE_FRAMES = 30          # unwind_deep's whole stack: _start .. leaf
PY_FRAMES = 100             # Python frames of the deep Python stack
COST_FREQ = 999
BIG_FILE_BYTES = 100 << 20

# bpf(2): x86_64 syscall number, commands, the perf-event program type.
SYS_BPF = 321
BPF_PROG_GET_FD_BY_ID = 13
BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0
BPF_PROG_TYPE_PERF_EVENT = 7

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long


def die(msg):
    sys.exit("bench_unwind: " + msg)


def bpf(cmd, *fields):
    """bpf(cmd, attr) with attr the given __u32 fields; the fd, or raises OSError."""
    attr = (ctypes.c_uint32 * len(fields))(*fields)
    ret = LIBC.syscall(ctypes.c_long(SYS_BPF), ctypes.c_long(cmd), ctypes.byref(attr),
                       ctypes.c_long(ctypes.sizeof(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def fdinfo(pid, fd):
    out = {}
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as f:
            for line in f:
                key, _, value = line.partition(":")
                out[key.strip()] = value.strip()
    except OSError:
        pass
    return out


def perf_event_prog_id(pid):
    """The id of the perf-event BPF program process pid holds (dynoprof's
    sampling program), or None."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-prog":
                continue
        except OSError:
            continue
        info = fdinfo(pid, fd)
        if info.get("prog_type") == str(BPF_PROG_TYPE_PERF_EVENT) and "prog_id" in info:
            return int(info["prog_id"])
    return None


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_seconds(pid):
    """CPU time of a live process from the scheduler (schedstat), in seconds."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total / 1e9


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            die(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def reap(proc, timeout=120):
    """Waits for a Popen child by wait4 (bounded); (exit code, rusage CPU seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            proc.kill()
            die(f"{proc.args[0]} did not exit within {timeout} s")
        time.sleep(0.05)


class Dynoprof:
    """`dynoprof record -p PID` started and known to be sampling."""

    def __init__(self, pid, freq, extra, workdir, tag):
        self.out = os.path.join(workdir, f"{tag}.folded")
        self.err = os.path.join(workdir, f"{tag}.stderr")
        with open(self.err, "w") as ef:
            self.proc = subprocess.Popen(
                [DYNOPROF, "record", "-p", str(pid), "-F", str(freq), "-o", self.out, *extra],
                stdout=subprocess.DEVNULL, stderr=ef, stdin=subprocess.DEVNULL)
        wait_until(lambda: "dynoprof: sampling" in read_text(self.err)
                   or self.proc.poll() is not None, 120, "dynoprof to start sampling")
        if self.proc.poll() is not None:
            die(f"dynoprof exited at start: {read_text(self.err).strip()}")

    def stop(self):
        """SIGINT, reaped; returns its CPU seconds (rusage, whole life)."""
        self.proc.send_signal(signal.SIGINT)  # not poll() first: it would reap, losing the rusage
        rc, cpu = reap(self.proc)
        if rc != 0:
            die(f"dynoprof exited {rc}: {read_text(self.err).strip()}")
        return cpu


def folded_stacks(path):
    """[(frames, count)] of a folded profile."""
    rows = []
    for line in read_text(path).splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            rows.append((stack.split(";"), int(count)))
    return rows


def is_kernel(frame):
    return frame.endswith("_[k]")


def weighted_median(pairs):
    """Median of values weighted by counts: pairs of (value, count)."""
    pairs = sorted(pairs)
    total = sum(c for _, c in pairs)
    if not total:
        return None
    acc = 0
    for v, c in pairs:
        acc += c
        if acc * 2 >= total:
            return v
    return pairs[-1][0]


def stack_shape(path, py_marker=None):
    """Samples, median native (user, non-Python) frames per sample, share of
    samples unwound through main (to glibc's __libc_start_call_main, its caller:
    Debian's xz has no symbol for main), median Python frames (frames holding
    py_marker)."""
    rows = folded_stacks(path)
    n = sum(c for _, c in rows)
    native, py, main = [], [], 0
    for frames, c in rows:
        user = [f for f in frames[1:] if not is_kernel(f)]
        pyf = [f for f in user if py_marker and py_marker in f]
        native.append((len(user) - len(pyf), c))
        py.append((len(pyf), c))
        if "__libc_start_call_main" in user:  # main's caller: main itself was unwound
            main += c
    return {"samples": n, "native_frames": weighted_median(native),
            "main_share": main / n if n else None,
            "py_frames": weighted_median(py) if py_marker else None}


# ---------------------------------------------------------------- 1. BPF cost

DEEP_PY = r'''
import random, sys, time, zlib
data = bytes(random.Random(16).choices(b"abcdefgh \n", k=65536))
def rec(n, end):
    if n == 0:
        while time.time() < end:
            zlib.compress(data, 6)
        return 0
    return rec(n - 1, end) + 1
rec(int(sys.argv[1]) - 2, time.time() + float(sys.argv[2]))
'''  # <module> + rec x (frames - 1): frames Python frames at the leaf
PY_MARKER = " (<string>:"  # what a frame of DEEP_PY reads as: `mod:func (<string>:line)`


def cost_run(target_argv, extra, seconds, workdir, tag):
    """One `record -p` of a fresh target for `seconds`; the program's totals and
    the profile's shape."""
    target = subprocess.Popen(target_argv, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        if target_argv[0] != "sleep":  # in its steady state before sampling starts
            wait_until(lambda: cpu_seconds(target.pid) > 0.3 or target.poll() is not None,
                       60, f"{os.path.basename(target_argv[0])} to start")
        if target.poll() is not None:
            die(f"{target_argv[0]} exited early ({target.returncode})")
        rec = Dynoprof(target.pid, COST_FREQ, extra, workdir, tag)
        prog_fd = None
        try:
            prog_id = None
            wait_until(lambda: perf_event_prog_id(rec.proc.pid) is not None, 30,
                       "dynoprof's perf-event program")
            prog_id = perf_event_prog_id(rec.proc.pid)
            prog_fd = bpf(BPF_PROG_GET_FD_BY_ID, prog_id, 0, 0)
            time.sleep(seconds)
            rec.stop()
            info = fdinfo("self", prog_fd)
        finally:
            if rec.proc.poll() is None:
                rec.proc.kill()
                rec.proc.wait()
            if prog_fd is not None:
                os.close(prog_fd)
        if target.poll() is not None and target_argv[0] != "sleep":
            die(f"{target_argv[0]} ended during the capture: raise its run time")
    finally:
        target.kill()
        target.wait()
    # Samples lost to a full ring buffer ran the program too.
    m = re.search(r"(\d+) lost", read_text(rec.err))
    return {"run_ns": int(info["run_time_ns"]), "runs": int(info["run_cnt"]), "out": rec.out,
            "lost": int(m.group(1)) if m else 0}


def bench_cost(args, workdir, python):
    print(f"== 1. BPF cost per sample of the perf-event program, record -p at {COST_FREQ} Hz, "
          f"{args.seconds:g} s x {args.rounds} rounds (load average {loadavg()})", flush=True)
    live = args.seconds * 3 + 60  # the target outlives the capture
    configs = [
        ("calibration", ["sleep", str(int(live))], [], None),
        ("native 30, -fomit-frame-pointer, CFI", [NOFP_DEEP, str(NATIVE_FRAMES - 5), str(live)],
         [], None),
        ("native 30, -fomit-frame-pointer, --no-eh-frame",
         [NOFP_DEEP, str(NATIVE_FRAMES - 5), str(live)], ["--no-eh-frame"], None),
        ("native 30, frame pointers, --no-eh-frame",
         [FP_DEEP, str(NATIVE_FRAMES - 5), str(live)], ["--no-eh-frame"], None),
        ("native 30, frame pointers, CFI", [FP_DEEP, str(NATIVE_FRAMES - 5), str(live)],
         [], None),
        # The unwinder alone: CFI, every other optional walk off (its cost over the
        # fixed cost below is the walk of 30 frames).
        ("native 30, -fomit-frame-pointer, CFI only", [NOFP_DEEP, str(NATIVE_FRAMES - 5), str(live)],
         ["--no-python", "--no-tags", "--no-counts", "--no-kernel"], None),
        # The fixed cost: frame pointers, 2 frames, every optional walk off.
        ("-fomit-frame-pointer, fixed cost only", [NOFP_DEEP, str(NATIVE_FRAMES - 5), str(live)],
         ["--no-eh-frame", "--no-python", "--no-tags", "--no-counts", "--no-kernel"], None),
        ("python3.11 100 + zlib, CFI", [python, "-c", DEEP_PY, str(PY_FRAMES), str(live)],
         [], PY_MARKER),
        ("python3.11 100 + zlib, --no-eh-frame",
         [python, "-c", DEEP_PY, str(PY_FRAMES), str(live)], ["--no-eh-frame"], PY_MARKER),
    ]
    results = {name: [] for name, *_ in configs}
    stats_fd = bpf(BPF_ENABLE_STATS, BPF_STATS_RUN_TIME)  # on while this fd is open
    try:
        for r in range(args.rounds):
            k = r % len(configs)
            for i, (name, argv, extra, marker) in enumerate(configs[k:] + configs[:k]):
                res = cost_run(argv, extra, args.seconds, workdir, f"cost{r}_{i}")
                res.update(stack_shape(res["out"], marker), round=r)
                results[name].append(res)
                print(f"   round {r + 1} {name:48s} runs {res['runs']:6d} target samples "
                      f"{res['samples']:6d} lost {res['lost']} run_time {res['run_ns'] / 1e6:8.2f} ms",
                      flush=True)
    finally:
        os.close(stats_fd)

    # Each round's own filtered cost corrects that round's runs (the host's load drifts).
    c_round = {x["round"]: x["run_ns"] / x["runs"] for x in results["calibration"] if x["runs"]}
    if len(c_round) != args.rounds:
        die("a calibration run saw no program runs")
    cal = list(c_round.values())
    c_filtered = statistics.median(cal)
    print(f"\n   filtered run (another process's sample): {c_filtered / 1000:.3f} us median "
          f"[{min(cal) / 1000:.3f}, {max(cal) / 1000:.3f}]")
    hdr = (f"   {'stack, mode':48s} {'us/sample':>9s} {'[min, max]':>15s} {'naive':>6s} "
           f"{'target':>6s} {'native':>6s} {'python':>6s} {'main':>5s}")
    print(hdr)
    print("   " + "-" * (len(hdr) - 3))
    for name, *_ in configs[1:]:
        per = []
        for x in results[name]:
            n = x["samples"] + x["lost"]
            if n:
                per.append((x["run_ns"] - (x["runs"] - n) * c_round[x["round"]]) / n / 1000)
        if not per:
            print(f"   {name:48s} no samples")
            continue
        xs = results[name]
        naive = statistics.median(x["run_ns"] / x["runs"] / 1000 for x in xs if x["runs"])
        share = statistics.median((x["samples"] + x["lost"]) / x["runs"] for x in xs if x["runs"])
        nat = statistics.median(x["native_frames"] for x in xs if x["native_frames"] is not None)
        pyf = [x["py_frames"] for x in xs if x["py_frames"] is not None]
        # Merged Python stacks start at the interpreter's first Python frame.
        mains = None if pyf else statistics.median(x["main_share"] for x in xs)
        print(f"   {name:48s} {statistics.median(per):9.2f} "
              f"{'[%.2f, %.2f]' % (min(per), max(per)):>15s} {naive:6.2f} {share * 100:5.0f}% "
              f"{nat:6.0f} {statistics.median(pyf) if pyf else '-':>6} "
              f"{'%4.0f%%' % (mains * 100) if mains is not None else '-':>5s}")
    print("   us/sample: the target's samples' own cost, median over rounds [min, max]; "
          "naive: run_time/run_cnt\n   with other processes' filtered runs mixed in; target: "
          "share of runs that were the target's;\n   native, python: median frames per "
          f"sample; main: samples whose stack reaches main. Goal: <= 5 us at {NATIVE_FRAMES} "
          f"native frames.\n   fixed cost only: --no-eh-frame --no-python --no-tags "
          "--no-counts --no-kernel on the same program.\n"
          f"   load average after: {loadavg()}\n", flush=True)


# ---------------------------------------------------------------- 2. xz -9

def make_xz_input(path, mbytes):
    """Log-like text, deterministic (seeded): mostly repeated records, which xz -9
    matches quickly, with one block in eight of fresh random lines, where it
    searches hard - so a run takes seconds, not minutes, per 64 MB."""
    rng = random.Random(16)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
             for _ in range(2000)]
    records = [" ".join(rng.choices(words, k=40)) for _ in range(64)]
    paths = [f"/api/v1/items/{i}" for i in range(200)]
    size, n = mbytes << 20, 0
    with open(path, "w") as f:
        while f.tell() < size:
            lines = []
            fresh = rng.randrange(8) == 0
            for _ in range(1000):
                n += 1
                if fresh:
                    lines.append("%08d %s GET %s status=%d bytes=%d ms=%d\n" % (
                        n, rng.choice(words), rng.choice(paths), rng.choice((200, 304, 404, 500)),
                        rng.randrange(100000), rng.randrange(300)))
                else:
                    lines.append("%08d %s\n" % (n, records[(n // 1000) % 64]))
            f.write("".join(lines))


class Perf:
    """`perf record --call-graph dwarf -p PID`, started disabled and enabled
    through its control FIFO (acknowledged) so it samples from a known point."""

    def __init__(self, pid, freq, workdir, tag):
        self.ctl = os.path.join(workdir, f"{tag}.ctl")
        self.ack = os.path.join(workdir, f"{tag}.ack")
        for p in (self.ctl, self.ack):
            os.mkfifo(p)
        self.data = os.path.join(workdir, f"{tag}.perf.data")
        self.err = os.path.join(workdir, f"{tag}.perf.stderr")
        with open(self.err, "w") as ef:
            self.proc = subprocess.Popen(
                ["perf", "record", "--call-graph", "dwarf", "-F", str(freq), "-p", str(pid),
                 "--delay=-1", "--control", f"fifo:{self.ctl},{self.ack}", "-o", self.data],
                stdout=subprocess.DEVNULL, stderr=ef, stdin=subprocess.DEVNULL)
        # Opened read-write: neither open blocks, whatever perf has opened yet.
        self.ctl_fd = os.open(self.ctl, os.O_RDWR)
        self.ack_fd = os.open(self.ack, os.O_RDWR)
        os.write(self.ctl_fd, b"enable\n")
        deadline = time.monotonic() + 120
        got = b""
        while b"ack" not in got:
            if self.proc.poll() is not None:
                die(f"perf exited at start: {read_text(self.err).strip()}")
            if time.monotonic() > deadline:
                die("perf did not acknowledge 'enable' within 120 s")
            os.set_blocking(self.ack_fd, False)
            try:
                got += os.read(self.ack_fd, 64)
            except BlockingIOError:
                time.sleep(0.05)

    def stop(self):
        """Stops it (it ends with its target; SIGINT otherwise); its CPU seconds,
        samples and bytes written."""
        deadline, cpu = time.monotonic() + 10, None
        while cpu is None and time.monotonic() < deadline:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)  # not poll(): the rusage
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                cpu = usage.ru_utime + usage.ru_stime
            else:
                time.sleep(0.05)
        if cpu is None:
            self.proc.send_signal(signal.SIGINT)
            _, cpu = reap(self.proc)
        os.close(self.ctl_fd)
        os.close(self.ack_fd)
        err = read_text(self.err)
        m = re.search(r"\(([\d]+) samples\)", err)
        size = os.path.getsize(self.data) if os.path.exists(self.data) else 0
        if os.path.exists(self.data):
            os.unlink(self.data)
        if not m:
            die(f"perf wrote no samples: {err.strip()}")
        return cpu, int(m.group(1)), size


def xz_run(xz, input_path, mode, freq, extra, workdir, tag):
    """One xz -9 run under a profiler (or none): a dict of wall, cpu and the profiler's."""
    gate_r, gate_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: held until the profiler is ready, then xz
        try:
            os.close(gate_w)
            os.read(gate_r, 1)
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 1)
            os.execv(xz, [xz, "-9", "-T1", "-c", input_path])
        finally:
            os._exit(127)
    os.close(gate_r)
    prof = None
    res = {}
    try:
        if mode == "dynoprof":
            prof = Dynoprof(pid, freq, extra, workdir, tag)
        elif mode == "perf":
            prof = Perf(pid, freq, workdir, tag)
        t0 = time.monotonic()
        os.write(gate_w, b"x")
        _, status, usage = os.wait4(pid, 0)
        res["wall"] = time.monotonic() - t0
        pid = None
        res["cpu"] = usage.ru_utime + usage.ru_stime
        if os.waitstatus_to_exitcode(status) != 0:
            die(f"xz exited {os.waitstatus_to_exitcode(status)}")
        if mode == "dynoprof":
            res["prof_cpu"] = prof.stop()
            shape = stack_shape(prof.out)
            res.update(samples=shape["samples"], main_share=shape["main_share"],
                       native_frames=shape["native_frames"])
        elif mode == "perf":
            res["prof_cpu"], res["samples"], res["perf_bytes"] = prof.stop()
        prof = None
    finally:
        os.close(gate_w)
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        if prof is not None and prof.proc.poll() is None:
            prof.proc.kill()
            prof.proc.wait()
    return res


def spread(values, spec):
    return "%s [%s, %s]" % (format(statistics.median(values), spec), format(min(values), spec),
                            format(max(values), spec))


def bench_xz(args, workdir):
    xz = "/usr/bin/xz"
    input_path = os.path.join(workdir, "xz-input.txt")
    make_xz_input(input_path, args.xz_mb)
    print(f"== 2. Debian xz -9 -T1 on {args.xz_mb} MiB of generated text (seeded), "
          f"{args.rounds} rounds (load average {loadavg()})", flush=True)
    modes = [("off", None, None, [])]
    for freq in (99, 999):
        modes += [(f"dynoprof CFI F{freq}", "dynoprof", freq, []),
                  (f"dynoprof --no-eh-frame F{freq}", "dynoprof", freq, ["--no-eh-frame"]),
                  (f"perf dwarf F{freq}", "perf", freq, [])]
    results = {m[0]: [] for m in modes}
    loads = []
    for r in range(args.rounds):
        k = r % len(modes)
        for i, (name, kind, freq, extra) in enumerate(modes[k:] + modes[:k]):
            res = xz_run(xz, input_path, kind, freq, extra, workdir, f"xz{r}_{i}")
            results[name].append(res)
            print(f"   round {r + 1} {name:28s} wall {res['wall']:7.2f} s cpu {res['cpu']:7.2f} s"
                  + (f" samples {res['samples']}" if "samples" in res else ""), flush=True)
        loads.append(loadavg())
    print("\n   load average after each round: " + "; ".join(loads))
    hdr = (f"   {'mode':28s} {'wall s':>21s} {'xz CPU s':>21s} {'wall slowdown %':>22s} "
           f"{'CPU slowdown %':>22s} {'prof CPU s':>10s} {'samples':>7s} {'main':>5s}")
    print(hdr)
    print("   " + "-" * (len(hdr) - 3))
    off = results["off"]
    for name, kind, _, _ in modes:
        xs = results[name]
        wall = [x["wall"] for x in xs]
        cpu = [x["cpu"] for x in xs]
        line = f"   {name:28s} {spread(wall, '.2f'):>21s} {spread(cpu, '.2f'):>21s}"
        if kind:
            ws = [(x["wall"] / o["wall"] - 1) * 100 for x, o in zip(xs, off)]
            cs = [(x["cpu"] / o["cpu"] - 1) * 100 for x, o in zip(xs, off)]
            main = [x["main_share"] for x in xs if x.get("main_share") is not None]
            line += (f" {spread(ws, '+.1f'):>22s} {spread(cs, '+.1f'):>22s}"
                     f" {statistics.median(x['prof_cpu'] for x in xs):10.2f}"
                     f" {statistics.median(x['samples'] for x in xs):7.0f}"
                     f" {('%4.0f%%' % (statistics.median(main) * 100)) if main else '-':>5s}")
        print(line)
    perf_mb = [x["perf_bytes"] / 2**20 for n, *_ in modes if n.startswith("perf")
               for x in results[n]]
    print("   median [min, max] over rounds; slowdowns are per-round ratios to that round's "
          "'off' run.\n   prof CPU: the profiler's own CPU time, start to exit; main: dynoprof "
          "samples whose stack reaches main.\n   perf wrote %.0f-%.0f MiB of perf.data per run "
          "(its unwinding happens later, in perf report: not counted).\n"
          % (min(perf_mb), max(perf_mb)), flush=True)


# ---------------------------------------------------------------- 3. tables

def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def text_bytes(path):
    out = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True).stdout
    m = re.search(r"\]\s+\.text\s+PROGBITS\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)", out)
    return int(m.group(1), 16) if m else None


def big_elf_files():
    """ELF files >= 100 MB in the usual places (a bounded look, not a disk scan),
    chromium's first, then the largest."""
    found = set()
    dirs = (["/usr/lib/chromium", "/usr/lib/chromium-browser", "/opt/google/chrome"]
            + ["/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib/x86_64-linux-gnu",
               "/usr/local/bin", "/usr/local/lib", "/opt"])
    for d in dirs:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            p = os.path.join(d, n)
            try:
                if (os.path.isfile(p) and not os.path.islink(p)
                        and os.path.getsize(p) >= BIG_FILE_BYTES and is_elf(p)):
                    found.add(os.path.realpath(p))
            except OSError:
                pass
    return sorted(found, key=lambda p: ("chrom" not in p, -os.path.getsize(p)))


def pyenv_libpython():
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip() \
        if shutil.which("pyenv") else ""
    libs = glob.glob(os.path.join(root, "versions", "3.*", "lib", "libpython3.*.so.1.0")) \
        if root else []

    def version(p):
        m = re.search(r"libpython3\.(\d+)", p)
        return int(m.group(1)) if m else 0
    return max(libs, key=version) if libs else None


# Maps each file given executable (as a loader would its text), then waits: its
# tables are what dynoprof's registry builds beyond the interpreter's own.
MAPPER = r'''
import mmap, sys, time
maps = []
for p in sys.argv[1:]:
    with open(p, "rb") as f:
        maps.append(mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ | mmap.PROT_EXEC))
print("ready", flush=True)
time.sleep(600)
'''


def status_kib(pid, key):
    m = re.search(r"^%s:\s+(\d+) kB" % key, read_text(f"/proc/{pid}/status"), re.M)
    return int(m.group(1)) if m else None


def bpf_map_rss_kib(pid):
    """Resident KiB of the BPF maps process pid has mapped (the unwind row table
    is one: resident whole from its creation)."""
    total, in_map = 0, False
    for line in read_text(f"/proc/{pid}/smaps").splitlines():
        if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):
            in_map = "bpf-map" in line
        elif in_map and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


def dynoprof_rss_kib(python, files, workdir):
    """dynoprof's own VmRSS, VmHWM and its BPF maps' resident KiB once `record -p`
    of a process mapping these files is sampling (with -p its tables are built
    before that)."""
    target = subprocess.Popen([python, "-c", MAPPER, *files], stdout=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, text=True)
    try:
        if target.stdout.readline().strip() != "ready":
            die(f"the mapping process failed for {files}")
        rec = Dynoprof(target.pid, 99, [], workdir, "rss")
        try:
            rss = (status_kib(rec.proc.pid, "VmRSS"), status_kib(rec.proc.pid, "VmHWM"),
                   bpf_map_rss_kib(rec.proc.pid))
        finally:
            rec.stop()
    finally:
        target.kill()
        target.wait()
    return rss


def bench_tables(args, python, workdir):
    crypto = None
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    m = re.search(r"libcrypto\.so\.3 \(libc6,x86-64\) => (\S+)", out)
    if m:
        crypto = os.path.realpath(m.group(1))
    if not crypto:
        die("libcrypto.so.3 not found (ldconfig -p): scripts/deps.sh installs libssl3")
    files = [("Debian python3.11 (static libpython)", python)]
    lib = pyenv_libpython()
    if lib:
        files.append(("pyenv libpython", lib))
    files.append(("libcrypto.so.3", crypto))
    big = big_elf_files()
    if not big:
        die("no ELF file >= 100 MB found on this host (looked in the usual directories)")
    files += [(">= 100 MB file", p) for p in big[:2]]
    print(f"== 3. Unwind table build (cfi_table__from_fd, {args.table_runs} runs; one process "
          f"per file) (load average {loadavg()})", flush=True)
    hdr = (f"   {'what':36s} {'file':54s} {'MiB':>5s} {'text':>5s} {'FDEs':>7s} {'rows':>8s} "
           f"{'rows x 8':>9s} {'ms 1st':>7s} {'ms med':>7s} {'RSS +':>8s} {'peak +':>8s} "
           f"{'dp RSS +':>8s} {'dp peak+':>8s}")
    print(hdr)
    print("   " + "-" * (len(hdr) - 3))
    base = dynoprof_rss_kib(python, [], workdir)
    for what, path in files:
        # python3.11's own table is in the base already.
        dp = dynoprof_rss_kib(python, [path], workdir) if path != python else None
        res = subprocess.run([CFI_BUILD, str(args.table_runs), path], capture_output=True,
                             text=True)
        if res.returncode != 0:
            die(f"bench_cfi_build {path}: {res.stderr.strip()}")
        kv = dict(f.split("=", 1) for f in res.stdout.split())
        text = text_bytes(path)
        shown = path if len(path) <= 54 else "..." + path[-51:]
        print(f"   {what:36s} {shown:54s} {os.path.getsize(path) / 2**20:5.0f} "
              f"{(text or 0) / 2**20:5.0f} {int(kv['fdes']):7d} {int(kv['rows']):8d} "
              f"{int(kv['rows']) * 8 / 2**20:7.2f}Mi {float(kv['first_ms']):7.1f} "
              f"{float(kv['median_ms']):7.1f} {int(kv['rss_kib']) / 1024:6.1f}Mi "
              f"{int(kv['peak_kib']) / 1024:6.1f}Mi "
              + (f"{(dp[0] - base[0]) / 1024:6.1f}Mi {(dp[1] - base[1]) / 1024:6.1f}Mi" if dp
                 else f"{'(base)':>8s} {'(base)':>8s}"))
    print("   MiB, text: file and .text size; rows x 8: the table's bytes in the BPF row table "
          "(--unwind-table-mb);\n   RSS +: the building process's RSS with the table held, "
          "peak +: its peak during the build (VmHWM);\n   dp RSS +, dp peak+: dynoprof's "
          "VmRSS and VmHWM once `record -p` of a python3.11 mapping the file\n   executable is "
          f"sampling, less the same for python3.11 alone ({base[0] / 1024:.0f} MiB, peak "
          f"{base[1] / 1024:.0f} MiB,\n   of which {base[2] / 1024:.0f} MiB are BPF maps "
          "mapped resident whole, the unwind row table's budget among them:\n   rows cost no "
          "RSS beyond it; what shows is the builder's heap).\n   Code without CFI (chromium keeps frame pointers "
          "instead) costs no rows: it is walked by frame pointers.\n"
          f"   load average after: {loadavg()}\n", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds of every mode (3; >= 3)")
    ap.add_argument("--seconds", type=float, default=5.0,
                    help="capture length of each BPF cost run, s (5)")
    ap.add_argument("--xz-mb", type=int, default=64, help="xz input size, MiB (64)")
    ap.add_argument("--table-runs", type=int, default=5, help="builds per file (5)")
    ap.add_argument("--only", default="cost,xz,tables", help="sections to run (cost,xz,tables)")
    args = ap.parse_args()
    sections = set(args.only.split(","))
    if sections - {"cost", "xz", "tables"} or args.rounds < 3:
        die("--only takes cost, xz, tables; --rounds must be >= 3")

    if os.geteuid() != 0:
        die("must run as root (dynoprof and perf load BPF programs and perf events)")
    python = os.path.realpath("/usr/bin/python3")
    need = [(DYNOPROF, "run `make bench-unwind`"), (NOFP_DEEP, "run `make bench-unwind`"),
            (FP_DEEP, "run `make bench-unwind`"), (CFI_BUILD, "run `make bench-unwind`"),
            ("/usr/bin/xz", "Debian's xz-utils (scripts/deps.sh)"),
            (shutil.which("perf") or "perf", "linux-perf (scripts/deps.sh)"),
            (shutil.which("readelf") or "readelf", "binutils (scripts/deps.sh)"),
            (shutil.which("ldconfig") or "ldconfig", "libc-bin"),
            (python, "Debian's python3 (scripts/deps.sh)")]
    missing = [f"{path} ({how})" for path, how in need if not os.access(path, os.X_OK)]
    if not re.search(r"python3\.\d+$", python):
        missing.append(f"/usr/bin/python3 is {python}, not Debian's python3.X")
    if missing:
        die("missing: " + "; ".join(missing))

    print(f"bench_unwind: {time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, "
          f"load average {loadavg()}; a shared host: read the spreads", flush=True)
    with tempfile.TemporaryDirectory(prefix="dynoprof-bench-unwind-") as workdir:
        if "cost" in sections:
            bench_cost(args, workdir, python)
        if "tables" in sections:
            bench_tables(args, python, workdir)
        if "xz" in sections:
            bench_xz(args, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`dynoprof record`: what it captures, checked against workloads with a known truth.

Every test profiles a workload from tests/workloads and checks what a user would look
at in the output: which functions appear, their share of samples, parent/child order,
the sample count against the CPU time the workload really used.
"""
import gzip
import json
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import (parse_folded_file, proc_cpu_seconds, stop_workload, summary_lost,
                      summary_samples)
from requires import require_tool

BURNERS = ("burn_alpha", "burn_beta", "burn_gamma")
CALLERS = {"burn_alpha": "caller_alpha", "burn_beta": "caller_beta", "burn_gamma": "caller_gamma"}
SYSCALL_ENTRY_FRAMES = ("entry_SYSCALL_64_[k]", "do_syscall_64_[k]")


def has_parent(frames, parent, child):
    """True when `parent` is immediately above `child` somewhere on the stack."""
    return any(frames[i] == parent and frames[i + 1] == child for i in range(len(frames) - 1))


def record_pid(run_dynoprof, pid, out, *extra, duration=3):
    """Records one process for `duration` s; returns stderr, failing on a non-zero exit."""
    rc, _, err = run_dynoprof("record", "-p", pid, "-d", duration, "-o", out, *extra,
                              timeout=duration + 60)
    assert rc == 0, f"record failed (rc={rc}):\n{err}"
    assert os.path.getsize(out) > 0, f"{out} is empty; stderr:\n{err}"
    return err


@pytest.fixture(scope="module")
def busy_split(start_module_workload):
    """A cpu_split process running for the whole module (for output-format tests)."""
    proc = start_module_workload("cpu_split", "-d", "300")
    time.sleep(0.2)
    assert proc.poll() is None, "cpu_split exited at once"
    return proc


# The default timer event, and sampling inside the scheduler tick (-e tick).
EVENTS = [pytest.param((), id="cpu-clock"), pytest.param(("-e", "tick"), id="tick")]
# The timer interrupt's hard-IRQ handler: samples are taken inside it (both
# events), and hard IRQs do not nest, so it is never the sampled code. (Its
# entry and softirq frames can be: softirqs run after it, interruptibly.)
INTERRUPT_FRAMES = ("__sysvec_apic_timer_interrupt_[k]", "hrtimer_interrupt_[k]")


@pytest.mark.parametrize("event", EVENTS)
def test_pid_shares_match_workload_measurement(run_dynoprof, start_workload, outdir, event):
    truth_path = os.path.join(outdir, "truth.json")
    out = os.path.join(outdir, "x.folded")
    proc = start_workload("cpu_split", "-d", "120", "-o", truth_path)
    time.sleep(0.3)
    cpu_before, wall_before = proc_cpu_seconds(proc.pid), time.monotonic()
    # 10 s at 99 Hz: ~1000 samples put a share's binomial error near 1.6
    # points, so the ±5-point check below holds by 3 sigma.
    seconds = 10
    err = record_pid(run_dynoprof, proc.pid, out, *event, duration=seconds)
    cpu_used = proc_cpu_seconds(proc.pid) - cpu_before
    cpu_fraction = cpu_used / (time.monotonic() - wall_before)
    stop_workload(proc)
    with open(truth_path) as f:
        truth = json.load(f)

    prof = parse_folded_file(out)
    total = prof.total()
    assert set(prof.comms()) == {"cpu_split"}, f"-p captured other processes: {prof.comms()}"

    # 99 Hz for the window, scaled by how much CPU the workload actually got.
    assert total >= 0.6 * 99 * seconds * cpu_fraction, (
        f"{total} samples for {cpu_used:.2f} CPU s at 99 Hz\n{err}")
    assert total <= 1.15 * 99 * cpu_used + 5, f"{total} samples for {cpu_used:.2f} CPU s\n{err}"

    n_summary = summary_samples(err)
    assert n_summary is not None, f"no 'dynoprof: N samples' summary on stderr:\n{err}"
    assert 0.9 * n_summary <= total <= n_summary, (
        f"summary says {n_summary} samples, file holds {total}")
    assert summary_lost(err) is not None, f"summary does not report lost samples:\n{err}"

    burning = prof.count_where(lambda fr: any(b in fr for b in BURNERS))
    assert burning >= 0.9 * total, (
        f"only {burning}/{total} samples in burn_*:\n{prof.describe()}")

    measured_total = sum(truth[b] for b in BURNERS)
    for burner in BURNERS:
        sampled_share = prof.count_with(burner) / burning
        measured_share = truth[burner] / measured_total
        assert abs(sampled_share - measured_share) <= 0.05, (
            f"{burner}: {sampled_share:.1%} of samples, workload measured "
            f"{measured_share:.1%} of its CPU\n{prof.describe()}")

        caller = CALLERS[burner]
        under_caller = prof.count_where(lambda fr: has_parent(fr, caller, burner))
        assert under_caller >= 0.9 * prof.count_with(burner), (
            f"{caller};{burner} in only {under_caller}/{prof.count_with(burner)} samples\n"
            f"{prof.describe()}")

    # Frame-pointer unwinding must reach main() (root first): main;run_rounds;caller;burn.
    full = prof.count_where(lambda fr: "main" in fr and "run_rounds" in fr
                            and fr.index("main") < fr.index("run_rounds"))
    assert full >= 0.9 * total, f"only {full}/{total} stacks reach main\n{prof.describe()}"


def test_command_mode_profiles_until_exit(run_dynoprof, workload, outdir):
    out = os.path.join(outdir, "x.folded")
    truth_path = os.path.join(outdir, "truth.json")
    start = time.monotonic()
    # 499 Hz over 2 s of the command's CPU (however long a busy machine takes to
    # give it, up to 40 s): ~1000 samples, so the 50/30/20 order below is not
    # left to chance.
    rc, _, err = run_dynoprof("record", "-F", "499", "-o", out, "--", workload("cpu_split"),
                              "-c", "2", "-d", "40", "-o", truth_path, timeout=90)
    elapsed = time.monotonic() - start
    assert rc == 0, f"record -- CMD failed (rc={rc}):\n{err}"
    with open(truth_path) as f:
        truth = json.load(f)
    cpu_used = truth["thread_cpu"]
    assert elapsed < truth["wall"] + 15, (
        f"record took {elapsed:.1f}s for a {truth['wall']:.1f} s command")

    prof = parse_folded_file(out)
    split = prof.of_comm("cpu_split")
    # The whole life of the command is captured: samples match its CPU time.
    assert 0.75 * 499 * cpu_used <= split.total() <= 1.15 * 499 * cpu_used + 5, (
        f"{split.total()} cpu_split samples for {cpu_used:.2f} CPU s at 499 Hz\n"
        f"{prof.describe()}\n{err}")
    assert split.count_with("burn_alpha") > split.count_with("burn_beta") > \
        split.count_with("burn_gamma") > 0, split.describe()
    assert split.count_where(lambda fr: has_parent(fr, "caller_alpha", "burn_alpha")) > 0


def test_command_mode_returns_command_exit_status(run_dynoprof, outdir):
    out = os.path.join(outdir, "x.folded")
    rc, _, err = run_dynoprof("record", "-o", out, "--", "sh", "-c", "exit 3", timeout=30)
    assert rc == 3, f"record -- CMD should exit with CMD's status 3, got {rc}:\n{err}"
    assert os.path.exists(out), f"no output written for a failing command:\n{err}"


def test_command_mode_missing_command_fails(run_dynoprof, outdir):
    out = os.path.join(outdir, "x.folded")
    rc, _, err = run_dynoprof("record", "-o", out, "--", "/nonexistent/command", timeout=30)
    assert rc != 0, f"record of a missing command exited 0:\n{err}"
    assert err.startswith("dynoprof: "), err
    assert "/nonexistent/command" in err, err


@pytest.mark.parametrize("event", EVENTS)
def test_syscall_heavy_shows_kernel_frames(run_dynoprof, start_workload, outdir, event):
    out = os.path.join(outdir, "x.folded")
    proc = start_workload("syscall_heavy", "-d", "120")
    time.sleep(0.2)
    cpu_before = proc_cpu_seconds(proc.pid)
    err = record_pid(run_dynoprof, proc.pid, out, *event, duration=3)
    cpu_used = proc_cpu_seconds(proc.pid) - cpu_before
    stop_workload(proc)

    prof = parse_folded_file(out).of_comm("syscall_heavy")
    total = prof.total()
    # CPU time in the kernel is sampled like user time.
    assert total >= 0.5 * 99 * min(cpu_used, 3), (
        f"{total} samples for {cpu_used:.2f} CPU s at 99 Hz\n{err}")

    def is_kernel(frame):
        return frame.endswith("_[k]")

    in_kernel = prof.count_where(lambda fr: any(is_kernel(f) for f in fr))
    assert in_kernel >= 0.5 * total, (
        f"only {in_kernel}/{total} samples have kernel frames\n{prof.describe()}")
    via_entry = prof.count_where(lambda fr: any(
        f in SYSCALL_ENTRY_FRAMES or f.startswith("entry_SYSCALL_64") for f in fr))
    assert via_entry >= 0.5 * in_kernel, (
        f"only {via_entry}/{in_kernel} kernel samples show a syscall entry frame "
        f"{SYSCALL_ENTRY_FRAMES}\n{prof.describe()}")

    # Kernel frames are the leaf end of the stack: no user frame below a kernel one.
    def kernel_on_top(frames):
        seen_kernel = False
        for f in frames[1:]:
            if is_kernel(f):
                seen_kernel = True
            elif seen_kernel:
                return False
        return True
    misordered = prof.count_where(lambda fr: not kernel_on_top(fr))
    assert misordered == 0, f"{misordered} samples have user frames under kernel frames\n" \
        f"{prof.describe()}"
    # The sample is of the interrupted code, not of the interrupt taking it.
    interrupted = prof.count_where(lambda fr: any(f in INTERRUPT_FRAMES for f in fr))
    assert interrupted == 0, f"{interrupted} samples show the timer interrupt's frames\n" \
        f"{prof.describe()}"

    # The user half of those stacks is there too, down to main().
    joined = prof.count_where(lambda fr: "main" in fr and any(is_kernel(f) for f in fr))
    assert joined >= 0.5 * in_kernel, (
        f"only {joined}/{in_kernel} kernel samples carry the user stack (main)\n"
        f"{prof.describe()}")


def test_short_lived_process_is_symbolized(run_dynoprof, dynoprof_bin, workload, outdir):
    out = os.path.join(outdir, "x.folded")
    rec = subprocess.Popen([dynoprof_bin, "record", "-a", "-d", "5", "-o", out],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)  # let the capture start
        assert rec.poll() is None, f"record exited early: {rec.communicate()[1]}"
        burner = subprocess.run([workload("short_lived"), "1"], timeout=30)
        assert burner.returncode == 0
        _, err = rec.communicate(timeout=60)
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait()
    assert rec.returncode == 0, f"record -a failed (rc={rec.returncode}):\n{err}"

    prof = parse_folded_file(out).of_comm("short_lived")
    burning = prof.count_with("short_lived_burn")
    assert burning >= 20, (
        f"{burning} samples in short_lived_burn from a 1 s burn at 99 Hz; short_lived "
        f"stacks:\n{prof.describe()}\n{err}")
    assert burning >= 0.7 * prof.total(), f"short_lived stacks:\n{prof.describe()}"
    # Samples taken before its unwind tables were built keep only the leaf,
    # marked (README: [unwind: tables pending]); every other one has its caller.
    pending = prof.count_where(lambda fr: "[unwind: tables pending]" in fr)
    assert prof.count_where(lambda fr: has_parent(fr, "main", "short_lived_burn")) >= \
        0.9 * (burning - pending), prof.describe()


def test_multiple_pids(run_dynoprof, start_workload, outdir):
    out = os.path.join(outdir, "x.folded")
    split = start_workload("cpu_split", "-d", "120")
    heavy = start_workload("syscall_heavy", "-d", "120")
    bystander = start_workload("short_lived", "60")
    time.sleep(0.2)
    record_pid(run_dynoprof, f"{split.pid},{heavy.pid}", out, duration=3)

    comms = parse_folded_file(out).comms()
    assert set(comms) == {"cpu_split", "syscall_heavy"}, (
        f"-p {split.pid},{heavy.pid} captured {comms} (short_lived is pid {bystander.pid})")


def test_tid_selects_one_thread(run_dynoprof, start_workload, outdir):
    out = os.path.join(outdir, "x.folded")
    proc = start_workload("cpu_split", "-d", "120", "-t", "2")
    time.sleep(0.3)
    tids = sorted(int(t) for t in os.listdir(f"/proc/{proc.pid}/task") if int(t) != proc.pid)
    assert len(tids) == 2, tids
    chosen = tids[0]
    cpu_before = proc_cpu_seconds(f"{proc.pid}/task/{chosen}")
    process_before = proc_cpu_seconds(proc.pid)
    rc, _, err = run_dynoprof("record", "--tid", chosen, "-d", "3", "-o", out, timeout=60)
    thread_cpu = proc_cpu_seconds(f"{proc.pid}/task/{chosen}") - cpu_before
    process_cpu = proc_cpu_seconds(proc.pid) - process_before
    assert rc == 0, f"record --tid failed (rc={rc}):\n{err}"

    total = parse_folded_file(out).total()
    # Only the chosen thread: at most its own CPU time's worth of samples, far fewer
    # than the two threads together would give.
    assert total <= 1.15 * 99 * thread_cpu + 5, (
        f"{total} samples but thread {chosen} used {thread_cpu:.2f} CPU s "
        f"(process {process_cpu:.2f})")
    assert total >= 0.4 * 99 * thread_cpu, (
        f"{total} samples for {thread_cpu:.2f} CPU s of thread {chosen}\n{err}")


def test_frequency_sets_sample_rate(run_dynoprof, busy_split, outdir):
    out = os.path.join(outdir, "x.folded")
    cpu_before = proc_cpu_seconds(busy_split.pid)
    err = record_pid(run_dynoprof, busy_split.pid, out, "-F", "499", duration=3)
    cpu_used = proc_cpu_seconds(busy_split.pid) - cpu_before
    total = parse_folded_file(out).total()
    # The window is 3 s; the CPU time also covers set-up and tear-down.
    assert 0.5 * 499 * min(cpu_used, 3) <= total <= 1.15 * 499 * cpu_used + 5, (
        f"{total} samples at -F 499 for {cpu_used:.2f} CPU s\n{err}")


def test_pprof_output_top_function(run_dynoprof, busy_split, outdir):
    out = os.path.join(outdir, "x.pb.gz")
    record_pid(run_dynoprof, busy_split.pid, out, duration=3)
    with open(out, "rb") as f:
        assert f.read(2) == b"\x1f\x8b", ".pb.gz output is not gzip"
    require_tool("go", "golang-go")
    top = go_pprof_top(out)
    assert top[0][1] == "burn_alpha", f"top flat function is not burn_alpha:\n{top[:10]}"


def go_pprof_top(path):
    """Runs `go tool pprof -top` on path; returns [(flat%, function)], heaviest first."""
    env = dict(os.environ, GOCACHE="/tmp/gocache", HOME="/tmp", GOFLAGS="-mod=mod")
    res = subprocess.run(["go", "tool", "pprof", "-top", path], capture_output=True,
                         text=True, env=env, timeout=120)
    assert res.returncode == 0, f"go tool pprof failed:\n{res.stderr}"
    rows, in_table = [], False
    for line in res.stdout.splitlines():
        cols = line.split()
        if cols[:2] == ["flat", "flat%"]:
            in_table = True
        elif in_table and len(cols) >= 6:
            rows.append((float(cols[1].rstrip("%")), " ".join(cols[5:])))
    assert rows, f"no rows in go tool pprof -top output:\n{res.stdout}\n{res.stderr}"
    return rows


def test_speedscope_output(run_dynoprof, busy_split, outdir):
    out = os.path.join(outdir, "x.speedscope.json")
    err = record_pid(run_dynoprof, busy_split.pid, out, duration=3)
    with open(out) as f:
        doc = json.load(f)
    check_speedscope(doc, summary_samples(err))


def check_speedscope(doc, expected_samples=None):
    """Checks a speedscope document's structure and that cpu_split's functions are in it."""
    assert doc.get("$schema") == "https://www.speedscope.app/file-format-schema.json"
    frames = doc["shared"]["frames"]
    names = [fr["name"] for fr in frames]
    for name in BURNERS + ("caller_alpha",):
        assert name in names, f"{name} missing from speedscope frames"
    assert doc["profiles"], "no profiles"
    sample_weight, units = 0, set()
    for prof in doc["profiles"]:
        assert prof["type"] in ("sampled", "evented")
        if prof["type"] == "sampled":
            assert len(prof["samples"]) == len(prof["weights"])
            for stack in prof["samples"]:
                assert all(0 <= i < len(frames) for i in stack)
            sample_weight += sum(prof["weights"])
            units.add(prof.get("unit"))
    assert sample_weight > 0, "speedscope profiles hold no weight"
    if expected_samples and units == {"none"}:
        assert 0.9 * expected_samples <= sample_weight <= expected_samples, (
            f"speedscope weights sum to {sample_weight}, summary said {expected_samples}")


def test_svg_is_default_output(run_dynoprof, busy_split, outdir):
    # 499 Hz: ~1000 samples, so the 30/20 boxes differ by 6 sigma, not 2.
    rc, _, err = run_dynoprof("record", "-p", busy_split.pid, "-d", "2", "-F", "499",
                              cwd=outdir, timeout=60)
    assert rc == 0, f"record failed (rc={rc}):\n{err}"
    out = os.path.join(outdir, "profile.svg")
    assert os.path.exists(out), f"no profile.svg written in cwd; stderr:\n{err}"
    check_svg(out)


def check_svg(path):
    """Well-formed SVG whose burn_* boxes are ordered by width like their CPU split."""
    root = ET.parse(path).getroot()  # raises on malformed XML
    assert root.tag.endswith("svg"), root.tag
    texts = [el.text or "" for el in root.iter()]
    assert any("burn_alpha" in t for t in texts), "burn_alpha not in the SVG"

    def local(tag):
        return tag.rsplit("}", 1)[-1]

    widths = {b: 0.0 for b in BURNERS}
    for group in root.iter():
        if local(group.tag) != "g":
            continue
        children = list(group)
        title = next((c.text or "" for c in children if local(c.tag) == "title"), "")
        rect = next((c for c in children if local(c.tag) == "rect"), None)
        name = title.split(" (")[0].strip()
        if name in widths and rect is not None and rect.get("width"):
            widths[name] += float(rect.get("width"))
    assert widths["burn_alpha"] > widths["burn_beta"] > widths["burn_gamma"] > 0, (
        f"flame graph box widths do not follow the 50/30/20 split: {widths}")


@pytest.mark.parametrize("name,fmt", [("x.out", "folded"), ("x.collapsed", None)])
def test_folded_by_format_flag_or_extension(run_dynoprof, busy_split, outdir, name, fmt):
    out = os.path.join(outdir, name)
    extra = ("--format", fmt) if fmt else ()
    record_pid(run_dynoprof, busy_split.pid, out, *extra, duration=2)
    prof = parse_folded_file(out)
    assert prof.count_with("burn_alpha") > 0, prof.describe()


def test_pprof_by_format_flag(run_dynoprof, busy_split, outdir):
    out = os.path.join(outdir, "x.data")
    record_pid(run_dynoprof, busy_split.pid, out, "--format", "pprof", duration=2)
    with open(out, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    assert b"burn_alpha" in data, "pprof output lacks the burn_alpha string"


def test_event_cpu_clock(run_dynoprof, busy_split, outdir):
    out = os.path.join(outdir, "x.folded")
    record_pid(run_dynoprof, busy_split.pid, out, "-e", "cpu-clock", duration=2)
    assert parse_folded_file(out).count_with("burn_alpha") > 0


def test_tick_above_the_kernel_tick_rate_warns_and_weighs_whole_ticks(run_dynoprof, workload,
                                                                      outdir):
    """-e tick cannot sample more often than the kernel ticks: record says so,
    and each sample weighs its thread's CPU time since its previous sample, so
    CPU time still adds up. The workload runs exactly as long as the capture
    (`-- COMMAND`) and measures its own thread CPU time."""
    out = os.path.join(outdir, "x.folded")
    truth_path = os.path.join(outdir, "truth.json")
    rc, _, err = run_dynoprof("record", "-e", "tick", "-F", "10000", "--weight", "cpu",
                              "-o", out, "--", workload("cpu_split"), "-d", "2", "-o",
                              truth_path, timeout=60)
    assert rc == 0, err
    with open(truth_path) as f:
        cpu_used = json.load(f)["thread_cpu"]
    warnings = [line for line in err.splitlines() if "warning: -e tick" in line]
    assert len(warnings) == 1 and "not 10000" in warnings[0], err
    weighed_s = parse_folded_file(out).total() / 1e9
    assert abs(weighed_s - cpu_used) <= 0.2 * cpu_used + 0.05, (
        "samples weigh %.3f CPU s, the process used %.3f s\n%s" % (weighed_s, cpu_used, err))


def test_event_cycles_works_or_explains(run_dynoprof, busy_split, outdir):
    """Hardware cycles may be missing (VMs); then one clear error line is expected."""
    out = os.path.join(outdir, "x.folded")
    rc, _, err = run_dynoprof("record", "-p", busy_split.pid, "-d", "2", "-e", "cycles",
                              "-o", out, timeout=60)
    if rc == 0:
        assert parse_folded_file(out).count_with("burn_alpha") > 0
    else:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("dynoprof: "), err
        assert "cycles" in err or "cpu-clock" in err, err


def elf_function_at(symbols, offset):
    """The function in symbols [(start, size, name)] containing offset, or None."""
    for start, size, name in symbols:
        if start <= offset < start + size:
            return name
    return None


def test_stripped_binary_shows_module_offsets(run_dynoprof, workload, start_workload, outdir):
    """Without symbols, frames read `module+0xOFF` (or [unknown]); the offsets must
    point into the functions that really burned the CPU."""
    original = workload("cpu_split")
    stripped = os.path.join(outdir, "split_stripped")
    shutil.copy(original, stripped)
    subprocess.run(["strip", stripped], check=True)
    nm = subprocess.run(["nm", "-S", "--defined-only", original], capture_output=True,
                        text=True, check=True).stdout
    symbols = [(int(a, 16), int(s, 16), n) for a, s, _, n in
               (line.split() for line in nm.splitlines() if len(line.split()) == 4)]

    out = os.path.join(outdir, "x.folded")
    proc = start_workload(stripped, "-d", "120")
    time.sleep(0.2)
    record_pid(run_dynoprof, proc.pid, out, "-F", "499", duration=3)  # shares clear of noise
    stop_workload(proc)

    prof = parse_folded_file(out)
    assert not prof.functions() & set(BURNERS), "stripped binary still shows symbol names?"
    by_function, unknown, other = {}, 0, []
    for frames, n in prof.stacks:
        leaf = frames[-1]
        m = re.fullmatch(r"(.+)\+0x([0-9a-fA-F]+)", leaf)
        if m and m.group(1).endswith("split_stripped"):
            fn = elf_function_at(symbols, int(m.group(2), 16))
            by_function[fn] = by_function.get(fn, 0) + n
        elif leaf == "[unknown]":
            unknown += n
        else:
            other.append((leaf, n))
    total = prof.total()
    offsets = sum(by_function.values())
    assert offsets + unknown >= 0.9 * total, (
        f"leaves neither split_stripped+0xOFF nor [unknown]: {other[:10]}\n{prof.describe()}")
    if offsets >= 0.5 * total:
        shares = [by_function.get(b, 0) for b in BURNERS]
        assert sum(shares) >= 0.8 * offsets, f"offsets map to {by_function}"
        assert shares[0] > shares[1] > shares[2] > 0, f"offsets map to {by_function}"

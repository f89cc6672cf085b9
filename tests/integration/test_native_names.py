"""How native frames without symbols are named (issue 16, symbolization half).

A stripped -O2 shared library (tests/unit/fixtures/native_names_lib.c: three static
hot functions of different cost, an exported entry point) called by a C program that
times each function with its thread CPU clock (native_names_prog.c):

- stripped, `record` names every address of one function the same,
  `libnn.so+0x<function start>`, so `report` shows one row per function, and each
  function's share of the samples matches the program's own measurement;
- the same library with a separate debug file (found by .gnu_debuglink, or by build-id
  under a debug root given by DYNOPROF_DEBUG_DIR) or with MiniDebugInfo
  (.gnu_debugdata, made as Fedora makes it) shows the real function names.

And Debian's python3.11 hashing with hashlib: libcrypto's unnamed assembly reads as
one row per function start (before: one row per sampled address).
"""
import json
import math
import os
import re
import subprocess

import pytest

from conftest import REPO_ROOT, parse_folded_file
from pyutil import distribution_python

FIXTURES = os.path.join(REPO_ROOT, "tests", "unit", "fixtures")
HOT = ("nn_light", "nn_medium", "nn_heavy")
# Samples wanted in the library's hot functions before shares are judged; a run that
# got fewer (a busy machine) is repeated longer, at most ATTEMPTS times.
MIN_SAMPLES = 400
ATTEMPTS = 3


def sh(script, cwd):
    subprocess.run(["sh", "-ec", script], cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def load_segments(path):
    """[(vaddr, offset, filesz)] of the PT_LOAD headers (readelf -lW)."""
    out = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True,
                         check=True).stdout
    segs = []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            segs.append((int(f[2], 16), int(f[1], 16), int(f[4], 16)))
    return segs


def file_offset(segs, vaddr):
    for v, off, size in segs:
        if v <= vaddr < v + size:
            return vaddr - v + off
    raise AssertionError(f"no PT_LOAD covers 0x{vaddr:x}")


def symbol_starts(path):
    """{name: vaddr} of the functions in the unstripped library's .symtab."""
    out = subprocess.run(["nm", "--defined-only", path], capture_output=True, text=True,
                         check=True).stdout
    return {f[2]: int(f[0], 16) for f in (l.split() for l in out.splitlines())
            if len(f) == 3 and f[1] in "tT"}


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """The library in four variants, each in its own directory next to the program."""
    top = str(tmp_path_factory.mktemp("native_names"))
    lib = os.path.join(FIXTURES, "native_names_lib.c")
    prog = os.path.join(FIXTURES, "native_names_prog.c")
    sh(f"gcc -O2 -g -shared -fPIC -Wl,--build-id '{lib}' -o libnn_full.so;"
       "objcopy --only-keep-debug libnn_full.so libnn.so.debug;"
       # MiniDebugInfo, Fedora's find-debuginfo recipe
       "nm -D libnn_full.so --format=posix --defined-only | awk '{ print $1 }' | sort > dynsyms;"
       "nm libnn_full.so --format=posix --defined-only |"
       " awk '{ if ($2 == \"T\" || $2 == \"t\" || $2 == \"D\") print $1 }' | sort > funcsyms;"
       "comm -13 dynsyms funcsyms > keep_symbols;"
       "objcopy -S --remove-section .gdb_index --remove-section .comment"
       " --keep-symbols=keep_symbols libnn.so.debug mini_debuginfo; xz -f mini_debuginfo;"
       "for d in strip link byid mini; do mkdir $d;"
       " cp libnn_full.so $d/libnn.so; strip --strip-all $d/libnn.so;"
       f" gcc -O2 '{prog}' -L$d -lnn -Wl,-rpath,'$ORIGIN' -o $d/nnprog; done;"
       "cp libnn.so.debug link/; objcopy --add-gnu-debuglink=link/libnn.so.debug link/libnn.so;"
       "id=$(readelf -n libnn_full.so | sed -n 's/.*Build ID: //p');"
       "mkdir -p debugroot/.build-id/$(echo $id | cut -c1-2);"
       "cp libnn.so.debug debugroot/.build-id/$(echo $id | cut -c1-2)/$(echo $id | cut -c3-).debug;"
       "objcopy --add-section .gnu_debugdata=mini_debuginfo.xz mini/libnn.so", cwd=top)
    full = os.path.join(top, "libnn_full.so")
    segs = load_segments(full)
    starts = symbol_starts(full)
    names = {f"libnn.so+0x{file_offset(segs, starts[n]):x}": n for n in (*HOT, "nn_run")}
    return {"top": top, "start_names": names}


def record(dynoprof_bin, variant_dir, out, env_extra=None):
    """Runs the program under `record -- ` until the hot functions have MIN_SAMPLES
    leaf samples (bounded); returns (folded, truth seconds per function, stderr)."""
    env = dict(os.environ, **(env_extra or {}))
    seconds = 3
    for _ in range(ATTEMPTS):
        truth_path = out + ".truth.json"
        proc = subprocess.run(
            [dynoprof_bin, "record", "-F", "499", "--no-python", "-o", out, "--",
             os.path.join(variant_dir, "nnprog"), str(seconds), truth_path],
            env=env, capture_output=True, text=True, timeout=seconds + 90)
        assert proc.returncode == 0, f"record failed ({proc.returncode}):\n{proc.stderr}"
        with open(truth_path) as f:
            truth = json.load(f)
        folded = parse_folded_file(out).of_comm("nnprog")
        in_lib = folded.count_where(lambda fr: fr[-1].startswith("libnn.so+") or
                                    fr[-1] in HOT)
        if in_lib >= MIN_SAMPLES:
            return folded, truth, proc.stderr
        seconds *= 2
    pytest.fail(f"only {in_lib} samples in libnn.so after {ATTEMPTS} runs "
                f"(last {seconds // 2} s):\n{folded.describe()}")


def leaf_counts(folded, pred):
    counts = {}
    for frames, n in folded.stacks:
        if pred(frames[-1]):
            counts[frames[-1]] = counts.get(frames[-1], 0) + n
    return counts


def report_rows(dynoprof_bin, path):
    """FUNCTION -> SELF samples of `dynoprof report` (all rows)."""
    proc = subprocess.run([dynoprof_bin, "report", "-i", path, "-n", "1000"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+(\d+)\s+(.+)$", line)
        if m:
            rows[m.group(4)] = int(m.group(3))
    return rows


def check_shares(counts_by_function, truth, what):
    """Each hot function's share of the samples against the program's CPU clock."""
    total = sum(counts_by_function.get(f, 0) for f in HOT)
    truth_total = sum(truth[f] for f in HOT)
    lines = []
    for f in HOT:
        got = counts_by_function.get(f, 0) / total
        want = truth[f] / truth_total
        # Sampling error (4 sigma of a binomial share) plus 3 points for what the
        # program's clock calls and the calls between functions add.
        tol = 4 * math.sqrt(want * (1 - want) / total) + 0.03
        lines.append(f"{f}: profile {got:.3f}, program {want:.3f}, tolerance {tol:.3f}")
        assert abs(got - want) <= tol, f"{what}: share of {f} off\n" + "\n".join(lines)


def test_stripped_library_one_row_per_function(dynoprof_bin, builds, outdir):
    out = os.path.join(outdir, "strip.folded")
    folded, truth, _ = record(dynoprof_bin, os.path.join(builds["top"], "strip"), out)
    names = builds["start_names"]
    rows = leaf_counts(folded, lambda leaf: leaf.startswith("libnn.so+"))
    # Every unnamed leaf in the library reads as the start of its function.
    strays = {name: n for name, n in rows.items() if name not in names}
    assert not strays, (f"libnn.so rows that are no function start (want {names}): "
                        f"{strays}\n{folded.describe()}")
    by_function = {names[name]: n for name, n in rows.items()}
    for f in HOT:
        assert by_function.get(f, 0) > 0, f"no samples in {f}: {by_function}"
    assert not any(f in folded.functions() for f in HOT), "a stripped function got a name"
    check_shares(by_function, truth, "stripped")
    # `report` shows the same: one row per function, no more.
    report = {name: n for name, n in report_rows(dynoprof_bin, out).items()
              if name.startswith("libnn.so+")}
    assert set(report) <= set(names), f"report rows: {report}"
    assert len(report) == len(rows)


@pytest.mark.parametrize("variant", ["link", "byid", "mini"])
def test_debug_symbols_name_stripped_functions(dynoprof_bin, builds, outdir, variant):
    """Debug file by .gnu_debuglink (same directory), by build-id under
    DYNOPROF_DEBUG_DIR, or MiniDebugInfo: the functions' own names."""
    env = {"DYNOPROF_DEBUG_DIR": os.path.join(builds["top"], "debugroot")} \
        if variant == "byid" else None
    out = os.path.join(outdir, f"{variant}.folded")
    folded, truth, _ = record(dynoprof_bin, os.path.join(builds["top"], variant), out, env)
    named = leaf_counts(folded, lambda leaf: leaf in HOT)
    unnamed = leaf_counts(folded, lambda leaf: leaf.startswith("libnn.so+"))
    total = sum(named.values()) + sum(unnamed.values())
    for f in HOT:
        assert named.get(f, 0) > 0, f"{variant}: {f} not named: {named} {unnamed}"
    # Only the PLT and the like may stay unnamed: a sliver of the library's samples.
    assert sum(unnamed.values()) <= 0.02 * total, f"{variant}: unnamed {unnamed} of {total}"
    check_shares(named, truth, variant)
    report = report_rows(dynoprof_bin, out)
    for f in HOT:
        assert report.get(f, 0) == named[f], f"{variant}: report rows {report}"


def test_debug_dir_is_where_build_ids_are_looked_up(dynoprof_bin, builds, outdir):
    """Without DYNOPROF_DEBUG_DIR the build-id copy is not found (it is not under
    /usr/lib/debug): the stripped names come back, one per function."""
    out = os.path.join(outdir, "byid_default.folded")
    folded, _, _ = record(dynoprof_bin, os.path.join(builds["top"], "byid"), out)
    assert not any(f in folded.functions() for f in HOT)
    rows = leaf_counts(folded, lambda leaf: leaf.startswith("libnn.so+"))
    assert set(rows) <= set(builds["start_names"]), rows


HASH_SCRIPT = """
import hashlib, sys, time
data = b"x" * (1 << 20)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    hashlib.sha256(data).digest()
"""


def fde_starts(path):
    """Start vaddrs of the non-empty FDEs of path (readelf)."""
    out = subprocess.run(["readelf", "--debug-dump=frames", path], capture_output=True,
                         text=True, check=True).stdout
    starts = set()
    for m in re.finditer(r" FDE .*pc=([0-9a-f]+)\.\.([0-9a-f]+)", out):
        if int(m.group(2), 16) > int(m.group(1), 16):
            starts.add(int(m.group(1), 16))
    return starts


def test_libcrypto_rows_grouped_by_function(dynoprof_bin, outdir):
    """Debian's python3 hashing SHA-256: libcrypto's unnamed code (its assembly
    has no exported symbol) reads as one row per FDE start, and the SHA-256 block
    function is one row holding most of libcrypto's samples, not dozens of 1% rows."""
    python = distribution_python()
    script = os.path.join(outdir, "hash.py")
    with open(script, "w") as f:
        f.write(HASH_SCRIPT)
    out = os.path.join(outdir, "hash.folded")
    seconds = 3
    for _ in range(ATTEMPTS):
        proc = subprocess.run([dynoprof_bin, "record", "-F", "499", "-o", out, "--", python,
                               script, str(seconds)], capture_output=True, text=True,
                              timeout=seconds + 90)
        assert proc.returncode == 0, proc.stderr
        folded = parse_folded_file(out)
        rows = leaf_counts(folded, lambda leaf: leaf.startswith("libcrypto.so"))
        if sum(rows.values()) >= MIN_SAMPLES:
            break
        seconds *= 2
    total = sum(rows.values())
    assert total >= MIN_SAMPLES, f"only {total} libcrypto samples:\n{folded.describe()}"
    libcrypto = subprocess.run(
        ["sh", "-c", "ldconfig -p | awk '$1 == \"libcrypto.so.3\" && /x86-64/ "
         "{ print $NF; exit }'"], capture_output=True, text=True).stdout.strip()
    libcrypto = os.path.realpath(libcrypto)
    segs = load_segments(libcrypto)
    start_offsets = {file_offset(segs, s) for s in fde_starts(libcrypto)
                     if any(v <= s < v + n for v, _, n in segs)}
    unnamed = {name: n for name, n in rows.items() if "+0x" in name}
    offsets = {int(name.rsplit("+0x", 1)[1], 16): n for name, n in unnamed.items()}
    strays = {hex(o): n for o, n in offsets.items() if o not in start_offsets}
    assert not strays, f"libcrypto rows that are no function start: {strays}"
    top = max(unnamed.values())
    print(f"libcrypto: {len(unnamed)} unnamed rows, {total} samples, top row {top}")
    assert top >= 0.5 * total, f"SHA-256 spread over rows: {sorted(unnamed.values())}"
    assert len(unnamed) <= 10, f"{len(unnamed)} libcrypto rows: {unnamed}"

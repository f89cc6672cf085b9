#!/usr/bin/env python3
"""Regenerates the seed corpora in tests/fuzz/corpus/ from real data.

    python3 tests/fuzz/gen_corpus.py [--record DYNOPROF PID]

Seeds are small valid inputs, so the fuzzers start from what dynoprof really
reads: /proc/self/maps, ELF files the compiler makes here and this kernel's
vdso, CPython line tables dumped by every installed interpreter (3.8+, the
unit tests' fixture), a config with every key, and times the API documents.
With --record, a 1 s `dynoprof record` of PID gives the folded and pprof
(gzipped and raw) seeds; without it those corpora are left as they are.
"""
import glob
import gzip
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def put(kind, name, data):
    d = os.path.join(CORPUS, kind)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def proc_maps():
    with open("/proc/self/maps") as f:
        lines = f.read().splitlines(True)
    put("proc_maps", "self", "".join(lines[:12]))
    put("proc_maps", "exec_only", "".join(l for l in lines if " r-xp " in l)[:2000])
    put("proc_maps", "deleted",
        "7f0000000000-7f0000001000 r-xp 00001000 fe:00 1234 /usr/lib/x (deleted)\n"
        "7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]\n")


def small_source(tmp):
    """Writes t.c, three small functions calling each other, into tmp; its path."""
    src = os.path.join(tmp, "t.c")
    with open(src, "w") as f:
        f.write("int g(int x) { return x * 3; }\n"
                "static int h(int x) { return g(x) + 1; }\n"
                "int f(int x) { return h(x) - 2; }\n")
    return src


def elf():
    with tempfile.TemporaryDirectory() as tmp:
        src = small_source(tmp)
        for name, flags in (("obj.o", ["-c"]), ("lib.so", ["-shared", "-fPIC", "-s"]),
                            ("lib_syms.so", ["-shared", "-fPIC", "-Wl,--build-id"])):
            out = os.path.join(tmp, name)
            subprocess.run(["cc", "-O1", *flags, src, "-o", out], check=True)
            with open(out, "rb") as f:
                put("elf_symtab", name, f.read())
    # This kernel's vdso, as dynoprof reads it (elf_symtab__open_image).
    with open("/proc/self/maps") as f:
        for line in f:
            if line.rstrip().endswith("[vdso]"):
                start, end = (int(x, 16) for x in line.split()[0].split("-"))
                with open("/proc/self/mem", "rb") as mem:
                    mem.seek(start)
                    put("elf_symtab", "vdso", mem.read(end - start))


def _sections(path):
    """{name: (vaddr, bytes)} of .eh_frame_hdr and .eh_frame in the ELF file at path."""
    out = {}
    lines = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    with open(path, "rb") as f:
        blob = f.read()
    for line in lines:
        fields = line.replace("[ ", "[").split()
        if len(fields) > 5 and fields[1] in (".eh_frame_hdr", ".eh_frame"):
            addr, off, size = (int(x, 16) for x in fields[3:6])
            out[fields[1]] = (addr, blob[off:off + size])
    return out


def fde_ranges():
    """.eh_frame_hdr + .eh_frame of small binaries, in fuzz_fde_ranges's layout."""
    with tempfile.TemporaryDirectory() as tmp:
        src = small_source(tmp)
        lib = os.path.join(REPO, "tests", "unit", "fixtures", "native_names_lib.c")
        for name, source, flags in (("small", src, ["-O1"]), ("native_names", lib, ["-O2"])):
            out = os.path.join(tmp, name + ".so")
            subprocess.run(["cc", *flags, "-shared", "-fPIC", "-s", source, "-o", out],
                           check=True)
            secs = _sections(out)
            hdr_vaddr, hdr = secs[".eh_frame_hdr"]
            frame_vaddr, frame = secs[".eh_frame"]
            head = bytes([0]) + len(hdr).to_bytes(2, "little") + \
                hdr_vaddr.to_bytes(8, "little") + frame_vaddr.to_bytes(8, "little")
            put("fde_ranges", name, head + hdr + frame)
            # The same without the search table: the .eh_frame walk.
            put("fde_ranges", name + "_walk", bytes([0, 0, 0]) + bytes(8) +
                frame_vaddr.to_bytes(8, "little") + frame)


def minidebug():
    """A stripped library with MiniDebugInfo (.gnu_debugdata), the Fedora way."""
    lib = os.path.join(REPO, "tests", "unit", "fixtures", "native_names_lib.c")
    with tempfile.TemporaryDirectory() as tmp:
        script = (
            "set -e; cc -O2 -shared -fPIC '%s' -o full.so; cp full.so mini.so; strip mini.so;"
            "nm -D full.so --format=posix --defined-only | awk '{print $1}' | sort > dyn;"
            "nm full.so --format=posix --defined-only | awk '$2 ~ /^[Tt]$/ {print $1}'"
            " | sort > funcs; comm -13 dyn funcs > keep;"
            "objcopy --only-keep-debug full.so dbg;"
            "objcopy -S --remove-section .comment --keep-symbols=keep dbg mdi; xz mdi;"
            "objcopy --add-section .gnu_debugdata=mdi.xz mini.so" % lib)
        subprocess.run(["sh", "-c", script], cwd=tmp, check=True)
        with open(os.path.join(tmp, "mini.so"), "rb") as f:
            put("elf_symtab", "lib_minidebug.so", f.read())


def pythons():
    seen = {}
    roots = []
    try:
        roots.append(subprocess.run(["pyenv", "root"], capture_output=True, text=True,
                                    check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    for minor in range(8, 14):
        cands = [p for r in roots for p in sorted(glob.glob(
            "%s/versions/3.%d.*/bin/python3.%d" % (r, minor, minor)))]
        cands += [shutil.which("python3.%d" % minor) or ""]
        for c in cands:
            if c and os.access(c, os.X_OK):
                seen[minor] = c
                break
    return seen


def linetables():
    dump = os.path.join(REPO, "tests", "unit", "fixtures", "py_linetable_dump.py")
    for minor, python in sorted(pythons().items()):
        out = subprocess.run([python, dump], capture_output=True, text=True,
                             check=True).stdout
        # "code MINOR FIRST CODELEN HEXTABLE QUALNAME"; an empty table leaves
        # "-" (or nothing) for HEXTABLE: skip those.
        codes = [l.split(" ") for l in out.splitlines() if l.startswith("code ")]
        codes = [c for c in codes if len(c) > 5 and c[4] not in ("", "-")]
        # The smallest few tables and one large one.
        codes.sort(key=lambda c: len(c[4]))
        for i, c in enumerate(codes[:3] + codes[-1:]):
            first, codelen, table = int(c[2]), int(c[3]), bytes.fromhex(c[4])
            instr = min(codelen // 2, 0xffff)
            head = bytes([minor - 8]) + (first & 0xffffffff).to_bytes(4, "big") + \
                instr.to_bytes(2, "big")
            put("linetable", "py3%d_%d" % (minor, i), head + table)


def config():
    put("config", "all_keys", """\
# every key, as README documents them
listen = 127.0.0.1:9464
listen_remote = false
token_file =
frequency = 19
event = cpu-clock
window = 10
database = /var/lib/dynoprof/history.db
retention_age = 7d
retention_size = 1GiB
python = true
tags = true
kernel = true
endpoint_from = django
max_series = 1000
max_query_seconds = 300
max_query_range = 7d
deploy_check_window = 300
deploy_check_min_effect = 0.02
deploy_check_confidence = 0.95
""")
    put("config", "small", "listen = [::1]:9000\nwindow = 2.5  # seconds\nendpoint_from = frame=app.views:*\n")


def times():
    for i, t in enumerate(("2026-11-22T01:00:00Z", "2026-11-22T01:00:00.123456789+02:00",
                           "1732233600.5", "2026-11-22 01:00:00 05:30", "30", "0.5")):
        put("rfc3339", "t%d" % i, t)
    for i, q in enumerate(("seconds=30", "from=2026-11-22T01:00:00Z&to=1732233600&by=endpoint",
                           "by=endpoint,commit&endpoint=%2Fcheckout&format=folded",
                           "a=%00b&x", "service=web+app&seconds=0.5&&=&%41=1")):
        put("http_query", "q%d" % i, q)


def recorded(dynoprof, pid):
    with tempfile.TemporaryDirectory() as tmp:
        pb, folded = os.path.join(tmp, "x.pb.gz"), os.path.join(tmp, "x.folded")
        for out, extra in ((pb, []), (folded, ["--group-by", "endpoint"])):
            subprocess.run([dynoprof, "record", "-p", str(pid), "-d", "1", "-o", out, *extra],
                           check=True, capture_output=True)
        with open(pb, "rb") as f:
            gz = f.read()
        put("gzip", "record.pb.gz", gz)
        put("pprof", "record.pb", gzip.decompress(gz))
        with open(folded) as f:
            put("folded", "record.folded", f.read())
    put("folded", "small", "python3;a;b;c 3\n[endpoint=/x];python3;a;d 1\n"
        "# comment\n\nx;kfunc_[k];m [mod]_[k];f (file.py:12) 2\n")


def main():
    proc_maps()
    elf()
    fde_ranges()
    minidebug()
    linetables()
    config()
    times()
    if len(sys.argv) == 4 and sys.argv[1] == "--record":
        recorded(sys.argv[2], int(sys.argv[3]))


if __name__ == "__main__":
    main()

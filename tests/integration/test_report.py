"""`dynoprof report`: the top table and format conversion, on real recordings of
cpu_split (one folded and one pprof recording shared by the module)."""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import parse_folded_file
from requires import require_tool

HEADER_RE = re.compile(r"^\s*SELF%\s+TOTAL%\s+SAMPLES\s+FUNCTION\s*$")
BURNERS = ("burn_alpha", "burn_beta", "burn_gamma")


@pytest.fixture(scope="module")
def recordings(run_dynoprof, start_module_workload, tmp_path_factory):
    """Records cpu_split twice (3 s each): {'folded': path, 'pprof': path}."""
    d = tmp_path_factory.mktemp("report")
    proc = start_module_workload("cpu_split", "-d", "300")
    time.sleep(0.2)
    paths = {"folded": str(d / "x.folded"), "pprof": str(d / "x.pb.gz")}
    for path in paths.values():
        # 499 Hz: the 50/30/20 order of the burners is far outside sampling noise.
        rc, _, err = run_dynoprof("record", "-p", proc.pid, "-d", "3", "-F", "499", "-o", path,
                                  timeout=60)
        assert rc == 0, f"record -o {path} failed (rc={rc}):\n{err}"
    proc.kill()
    return paths


def parse_report(text):
    """Returns [(self_pct, total_pct, samples, function)] from a report's stdout."""
    lines = text.splitlines()
    header = [i for i, line in enumerate(lines) if HEADER_RE.match(line)]
    assert header, f"no '  SELF%  TOTAL%  SAMPLES  FUNCTION' header in:\n{text}"
    rows = []
    for line in lines[header[0] + 1:]:
        if not line.strip():
            continue
        cols = line.split(None, 3)
        assert len(cols) == 4, f"malformed report row: {line!r}"
        self_pct, total_pct, samples, function = cols
        rows.append((float(self_pct.rstrip("%")), float(total_pct.rstrip("%")), int(samples),
                     function.strip()))
    return rows


def report_rows(run_dynoprof, *args):
    rc, out, err = run_dynoprof("report", *args, timeout=60)
    assert rc == 0, f"report {' '.join(map(str, args))} failed (rc={rc}):\n{err}"
    return parse_report(out)


def test_report_folded_top_table(run_dynoprof, recordings):
    prof = parse_folded_file(recordings["folded"])
    rows = report_rows(run_dynoprof, "-i", recordings["folded"])
    assert rows, "report printed no rows"
    names = [r[3] for r in rows]
    assert "burn_alpha" in names[:3], f"burn_alpha not in the top rows: {rows[:5]}"
    by_name = {r[3]: r for r in rows}

    total = prof.total()
    self_pct, total_pct, samples, _ = by_name["burn_alpha"]
    # burn_alpha is (nearly always) a leaf, so self and total sample counts agree
    # with the file whichever one the SAMPLES column shows.
    assert samples in (prof.count_leaf("burn_alpha"), prof.count_with("burn_alpha")), (
        by_name["burn_alpha"], prof.count_leaf("burn_alpha"), prof.count_with("burn_alpha"))
    assert abs(self_pct - 100.0 * samples / total) < 0.15, by_name["burn_alpha"]
    assert abs(total_pct - 100.0 * prof.count_with("burn_alpha") / total) < 0.15
    # Rows are sorted by self time, heaviest first.
    selfs = [r[0] for r in rows]
    assert selfs == sorted(selfs, reverse=True), rows[:10]
    # Callers have no self time but at least their callee's total.
    if "caller_alpha" in by_name:
        assert by_name["caller_alpha"][1] >= total_pct - 0.15


def test_report_top_limits_rows(run_dynoprof, recordings):
    rows = report_rows(run_dynoprof, "-i", recordings["folded"], "--top", "2")
    assert len(rows) == 2, rows
    assert rows[0][3] == "burn_alpha", rows


def test_report_reads_pprof(run_dynoprof, recordings):
    rows = report_rows(run_dynoprof, "-i", recordings["pprof"])
    assert rows and rows[0][3] == "burn_alpha", rows[:5]


def test_report_converts_pprof_to_folded(run_dynoprof, recordings, tmp_path):
    out = str(tmp_path / "y.folded")
    rc, _, err = run_dynoprof("report", "-i", recordings["pprof"], "-o", out, timeout=60)
    assert rc == 0, f"conversion failed (rc={rc}):\n{err}"
    prof = parse_folded_file(out)
    assert prof.total() > 0
    counts = [prof.count_with(b) for b in BURNERS]
    assert counts[0] > counts[1] > counts[2] > 0, prof.describe()
    assert prof.count_where(lambda fr: "caller_alpha" in fr and "burn_alpha" in fr
                            and fr.index("caller_alpha") < fr.index("burn_alpha")) > 0


def test_folded_pprof_round_trip_keeps_counts(run_dynoprof, recordings, tmp_path):
    """folded -> pprof -> folded keeps the total and every function's sample count."""
    pprof = str(tmp_path / "rt.pb.gz")
    back = str(tmp_path / "rt.folded")
    for src, dst in ((recordings["folded"], pprof), (pprof, back)):
        rc, _, err = run_dynoprof("report", "-i", src, "-o", dst, timeout=60)
        assert rc == 0, f"report -i {src} -o {dst} failed (rc={rc}):\n{err}"
    before, after = parse_folded_file(recordings["folded"]), parse_folded_file(back)
    assert after.total() == before.total()
    for fn in before.functions():
        assert after.count_with(fn) == before.count_with(fn), fn
    assert after.comms() == before.comms()


def test_report_converts_to_speedscope_and_svg(run_dynoprof, recordings, tmp_path):
    for name in ("y.speedscope.json", "y.svg"):
        out = str(tmp_path / name)
        rc, _, err = run_dynoprof("report", "-i", recordings["folded"], "-o", out, timeout=60)
        assert rc == 0, f"report -o {name} failed (rc={rc}):\n{err}"
        with open(out, encoding="utf-8") as f:
            text = f.read()
        assert "burn_alpha" in text
        if name.endswith(".json"):
            names = [fr["name"] for fr in json.loads(text)["shared"]["frames"]]
            assert "burn_alpha" in names


def test_report_pprof_is_readable_by_go_pprof(run_dynoprof, recordings, tmp_path):
    require_tool("go", "golang-go")
    out = str(tmp_path / "y.pb.gz")
    rc, _, err = run_dynoprof("report", "-i", recordings["folded"], "-o", out, timeout=60)
    assert rc == 0, err
    env = dict(os.environ, GOCACHE="/tmp/gocache", HOME="/tmp")
    res = subprocess.run(["go", "tool", "pprof", "-top", out], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "burn_alpha" in res.stdout, res.stdout


def sniff_format(path):
    """Names the format of a file by its content: folded, svg, pprof or speedscope."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        return "pprof"  # gzipped protobuf
    text = data.decode("utf-8", errors="replace").lstrip()
    if text.startswith("{"):
        doc = json.loads(text)
        return "speedscope" if "speedscope" in doc.get("$schema", "") else "json?"
    if text.startswith("<?xml") or text.startswith("<svg"):
        return "svg"
    if text and all(re.match(r"^\S.* \d+$", line) for line in text.splitlines() if line):
        return "folded"
    # pprof may also be written without gzip: a protobuf holding the function names.
    return "pprof" if b"burn_alpha" in data else "unknown"


@pytest.mark.parametrize("name,expected", [
    ("y.folded", "folded"), ("y.collapsed", "folded"), ("y.txt", "folded"),
    ("y.svg", "svg"), ("y.pb.gz", "pprof"), ("y.pprof", "pprof"),
    ("y.json", "speedscope"), ("y.speedscope.json", "speedscope"),
])
def test_output_format_follows_extension(run_dynoprof, recordings, tmp_path, name, expected):
    out = str(tmp_path / name)
    rc, _, err = run_dynoprof("report", "-i", recordings["folded"], "-o", out, timeout=60)
    assert rc == 0, f"report -o {name} failed (rc={rc}):\n{err}"
    assert sniff_format(out) == expected, f"{name} was written as {sniff_format(out)}"


def test_format_flag_overrides_extension(run_dynoprof, recordings, tmp_path):
    out = str(tmp_path / "y.svg")
    rc, _, err = run_dynoprof("report", "-i", recordings["folded"], "-o", out,
                              "--format", "speedscope", timeout=60)
    assert rc == 0, f"report --format speedscope failed (rc={rc}):\n{err}"
    assert sniff_format(out) == "speedscope"

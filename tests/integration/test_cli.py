"""The command line (issue 13): every subcommand's --help comes from its option
table and agrees with README; a mistyped flag is one `dynoprof: CMD:` line and
exit 2; durations take units (`5s`, `2m`) everywhere; `agent --help` names every
route the running agent serves; `make CFLAGS=-O0` keeps the warnings and defines."""
import os
import re
import subprocess
import time

import pytest

from agentutil import Agent
from conftest import run_dynoprof_cmd

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMMANDS = ["record", "report", "agent", "diff"]
# An option row of --help: "  -d, --duration DURATION  ...", "      --no-kernel  ..."
# or "  -q  ..." (short, long, argument).
OPTION_ROW = re.compile(r"^  (?:-(\w), |    )?--([a-z][a-z-]*)(?: ([^ ]+))?|^  -(\w)(?: ([A-Z][^ ]*))?(?: |$)")


def help_options(cmd):
    """(help text, [(short or None, long or None, arg or None)]) of `dynoprof CMD --help`."""
    rc, out, err = run_dynoprof_cmd(cmd, "--help", timeout=30)
    assert rc == 0, f"{cmd} --help exited {rc}: {err}"
    assert err == "", f"{cmd} --help wrote to stderr: {err}"
    options = []
    for line in out.splitlines():
        m = OPTION_ROW.match(line)
        if m:
            options.append((m.group(1) or m.group(4), m.group(2), m.group(3) or m.group(5)))
    return out, options


def readme_section(cmd):
    """README's `## dynoprof CMD` section, up to the next `## ` heading."""
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    start = text.index(f"\n## dynoprof {cmd}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def assert_one_line_usage_error(rc, err, cmd, *must_mention):
    assert rc == 2, f"expected exit 2, got {rc}; stderr:\n{err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got:\n{err}"
    assert lines[0].startswith(f"dynoprof: {cmd}: "), lines[0]
    assert f"dynoprof {cmd} --help" in lines[0], lines[0]
    for word in must_mention:
        assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_lists_every_option(cmd):
    out, options = help_options(cmd)
    assert out.startswith(f"usage: dynoprof {cmd} "), out[:200]
    assert ("h", "help", None) in options, out
    assert len(options) >= 6, f"{cmd} --help lists too few options: {options}"
    # -h is the same text.
    rc, out_h, _ = run_dynoprof_cmd(cmd, "-h", timeout=30)
    assert rc == 0 and out_h == out
    # Every listed option is one the parser takes, with the argument the help
    # shows: `--NAME [x] --help` reaches --help, or fails on the value x, never
    # on the option.
    for short, name, arg in options:
        if name == "help":
            continue
        args = [f"--{name}" if name else f"-{short}"] + (["x"] if arg else []) + ["--help"]
        rc, _, err = run_dynoprof_cmd(cmd, *args, timeout=30)
        assert rc in (0, 2) and not re.search(
            r"unrecognized option|is ambiguous|needs an argument|takes no argument", err), (
            f"{cmd} {' '.join(args)}: listed by --help but not parsed so: rc={rc} {err}")
        if short and name:
            rc2, _, err2 = run_dynoprof_cmd(cmd, f"-{short}", *args[1:], timeout=30)
            assert (rc2, err2) == (rc, err), f"-{short} and --{name} differ: {err2} / {err}"


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_agrees_with_readme(cmd):
    """Every option of --help is in README's section of the command (long or
    short form), and every option README's synopsis and option table give the
    command is in --help."""
    _, options = help_options(cmd)
    section = readme_section(cmd)
    longs = {name for _, name, _ in options if name}
    for short, name, _ in options:
        if name == "help":
            continue
        mentioned = (name and re.search(r"--%s\b" % re.escape(name), section)) or (
            short and re.search(r"(?<![\w-])-%s\b" % re.escape(short), section))
        assert mentioned, f"README's `dynoprof {cmd}` section does not mention " \
            f"{'--' + name if name else '-' + short}"
    documented = set()
    block = None
    for line in section.splitlines():
        if line.startswith("```"):
            block = [] if block is None else None
            continue
        if block is not None:
            block.append(line)
            if block[0].startswith(f"dynoprof {cmd}"):
                documented.update(re.findall(r"(?<![\w-])--([a-z][a-z-]*)", line))
        elif line.startswith("| `-"):
            documented.update(re.findall(r"(?<![\w-])--([a-z][a-z-]*)", line.split("|")[1]))
    assert documented, f"no synopsis or option table found in README for {cmd}"
    assert documented <= longs, (
        f"README documents options `dynoprof {cmd} --help` lacks: {sorted(documented - longs)}")


@pytest.mark.parametrize("cmd", COMMANDS)
@pytest.mark.parametrize("flag", ["--bogus-flag", "-Z", "--bogus=1"])
def test_mistyped_flag_is_one_line(cmd, flag):
    rc, out, err = run_dynoprof_cmd(cmd, flag, timeout=30)
    shown = flag.split("=")[0]
    assert_one_line_usage_error(rc, err, cmd, f"unrecognized option '{shown}'")
    assert out == ""


def test_command_errors_are_one_line():
    for args in ([], ["bogus"], ["--bogus"]):
        rc, out, err = run_dynoprof_cmd(*args, timeout=30)
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and lines[0].startswith("dynoprof: "), (args, err)
        assert "dynoprof help" in lines[0] and out == "", (args, err)
    rc, out, _ = run_dynoprof_cmd("help", timeout=30)
    assert rc == 0
    for cmd in COMMANDS:
        assert re.search(r"^  %s " % cmd, out, re.M), f"`dynoprof help` lacks {cmd}:\n{out}"


def test_option_errors_are_one_line():
    rc, _, err = run_dynoprof_cmd("record", "-d", timeout=30)
    assert_one_line_usage_error(rc, err, "record", "'-d'", "argument")
    rc, _, err = run_dynoprof_cmd("record", "--quiet=yes", timeout=30)
    assert_one_line_usage_error(rc, err, "record", "--quiet", "no argument")
    rc, _, err = run_dynoprof_cmd("record", "--no", timeout=30)
    assert_one_line_usage_error(rc, err, "record", "ambiguous", "--no-kernel", "--no-python")
    rc, _, err = run_dynoprof_cmd("diff", "--json", timeout=30)
    assert_one_line_usage_error(rc, err, "diff", "--json", "argument")


@pytest.mark.parametrize("value", ["5s", "2m", "1500ms", "0.5", "1h"])
def test_record_duration_takes_units(value, tmp_path):
    """-d parses every form: the run gets as far as the output check (the
    unwritable path stops it before capturing, so `2m` takes no two minutes)."""
    rc, _, err = run_dynoprof_cmd("record", "-a", "-d", value, "-o",
                                  "/nonexistent/x.folded", timeout=30)
    assert rc == 2 and "/nonexistent" in err and "duration" not in err, err


@pytest.mark.parametrize("value", ["5x", "-1s", "5 s", "0", "0s", "1e3", "400d"])
def test_record_bad_duration(value):
    rc, _, err = run_dynoprof_cmd("record", "-a", "-d", value, "-o", "/tmp/x.folded",
                                  timeout=30)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, err
    assert lines[0].startswith("dynoprof: ") and "duration" in lines[0], err
    for unit in ("5s", "2m"):
        assert unit in lines[0], f"the error should show the units: {lines[0]}"


def test_record_duration_with_unit_captures_that_long(tmp_path, start_workload):
    """`-d 1500ms` stops the capture after 1.5 s of sampling, not 1500 s."""
    out = str(tmp_path / "x.folded")
    proc = start_workload("cpu_split", "-d", "60")
    start = time.monotonic()
    rc, _, err = run_dynoprof_cmd("record", "-p", proc.pid, "-d", "1500ms", "-o", out,
                                  timeout=120)
    elapsed = time.monotonic() - start
    assert rc == 0, err
    assert elapsed >= 1.5, f"took {elapsed:.2f} s"
    m = re.search(r"samples in ([0-9.]+) s", err)
    assert m and 1.4 <= float(m.group(1)) <= 5.0, err
    assert os.path.getsize(out) > 0


def test_record_window_takes_units(tmp_path):
    rc, _, err = run_dynoprof_cmd("record", "-a", "--window", "500ms", "-d", "1s", "-o",
                                  "/nonexistent/x.folded", timeout=30)
    assert rc == 2 and "/nonexistent" in err and "window" not in err, err
    rc, _, err = run_dynoprof_cmd("record", "-a", "--window", "2h", "-o", "/tmp/x.folded",
                                  timeout=30)
    assert rc == 2 and "--window" in err and len(err.strip().splitlines()) == 1, err


def test_agent_flags_take_units(tmp_path):
    """`--window 2s` overrides the test config's 1-second window with 2 seconds,
    and the config file takes units too (`max_query_seconds = 1m`)."""
    agent = Agent(str(tmp_path), config={"max_query_seconds": "1m"}, args=["--window", "2s"])

    def windows():
        status, body = agent.get("/metrics", timeout=10)
        assert status == 200, body
        m = re.search(rb"^dynoprof_agent_windows_total (\d+)", body, re.M)
        return time.monotonic(), int(m.group(1)) if m else 0

    try:
        agent.start()
        deadline = time.monotonic() + 30
        t0, w0 = windows()
        while w0 == 0 and time.monotonic() < deadline:  # from the first window on
            time.sleep(0.2)
            t0, w0 = windows()
        assert w0 > 0, "no window stored in 30 s:\n" + agent.stderr
        time.sleep(8)
        t1, w1 = windows()
        status, _ = agent.get("/debug/pprof/profile?seconds=61", timeout=10)
        assert status == 400, "max_query_seconds = 1m should refuse ?seconds=61"
        agent.stop()
    finally:
        agent.close()
    # 2-second windows: about 4 in 8 s (1-second ones would be about 8).
    closed = w1 - w0
    assert 1 <= closed <= 0.75 * (t1 - t0), f"{closed} windows in {t1 - t0:.1f} s"
    rc, _, err = run_dynoprof_cmd("agent", "--window", "1.5", "--database",
                                  str(tmp_path / "y.db"), timeout=30)
    assert rc == 2 and "window" in err and len(err.strip().splitlines()) == 1, err


def test_agent_help_lists_every_route_it_serves(tmp_path):
    """The running agent's 404 names its routes: each is in --help."""
    out, _ = help_options("agent")
    agent = Agent(str(tmp_path))
    try:
        agent.start()
        status, body = agent.get("/no-such-route", timeout=10)
        agent.stop()
    finally:
        agent.close()
    assert status == 404, body
    routes = re.findall(r"(/[a-z0-9/_.-]+)", body.decode().split("; try ", 1)[1])
    assert "/api/v1/regressions" in routes and len(routes) >= 6, body
    for route in routes:
        assert re.search(r"^  GET %s " % re.escape(route), out, re.M), (
            f"agent --help does not list {route}:\n{out}")


def test_make_cflags_keeps_warnings_and_defines():
    """`make CFLAGS=-O0` replaces the optimisation only."""
    r = subprocess.run(["make", "-n", "-B", "CFLAGS=-O0 -g", ".output/obj/user/util/duration.o"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stdout.splitlines() if "duration.c" in l and " -c " in l]
    assert line, r.stdout
    for flag in ("-O0", "-Werror", "-Wall", "-Wextra", "-D_GNU_SOURCE", "-std=gnu11"):
        assert flag in line[0].split(), f"{flag} missing from: {line[0]}"

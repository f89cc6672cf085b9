"""The SVG flame graph in a real browser (headless Chromium).

The graph comes from `dynoprof report -i known.folded -o known.svg` (the real
binary, folded reader and SVG writer); if that fails, from the file the unit test
tests/unit/test_svg.c leaves in /tmp (the same profile built in C). Both draw:

    100 samples: python3 80 (compute 50, parse_json 20, a kernel read 10),
                 nginx 20 (epoll in the kernel)

Checks: the screenshot looks like a flame graph (many frames, kernel orange,
Python green, comm grey); the file's own script, driven through its
"#selftest=NAME" hook, shows the hover line, zooms (ancestors kept full width,
the rest hidden), searches (highlight and "Matched" share) and resets; a
"#zoom=...&search=..." link opens zoomed and searched. Fails when Chromium is
missing (Debian package chromium, installed by scripts/deps.sh test).
"""
import html
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import urllib.parse
import zlib

import pytest

UNIT_TEST_SVG = "/tmp/dynoprof-test-svg.svg"
CHROMIUM_TIMEOUT = 60

# The profile of tests/unit/test_svg.c, as dynoprof's folded writer spells it.
KNOWN_FOLDED = """\
nginx;_start;main;ngx_process_events;entry_SYSCALL_64_[k];do_syscall_64_[k];do_epoll_wait_[k] 20
python3;_start;main;Py_RunMain;main (app.py:10);handle (app.py:20);compute (app.py:30) 50
python3;_start;main;Py_RunMain;main (app.py:10);handle (app.py:20);entry_SYSCALL_64_[k];do_syscall_64_[k];ext4_file_read_iter [ext4]_[k] 10
python3;_start;main;Py_RunMain;main (app.py:10);handle (app.py:20);parse_json (json.py:5) 20
"""
FRAMES = 19          # distinct call paths, plus the root "all"
IMAGE_WIDTH = 1200   # svg__write's default
FRAMES_WIDTH = 1180  # image width less the 10 px side margins


def chromium_path():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(autouse=True)
def chromium_installed():
    if chromium_path() is None:
        pytest.fail("chromium not found on PATH: apt-get install chromium (scripts/deps.sh test)")


def run_chromium(url, *mode):
    """Runs headless Chromium on url with mode flags; returns its stdout."""
    with tempfile.TemporaryDirectory(prefix="dynoprof-chromium-") as profile_dir:
        cmd = [chromium_path(), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-extensions", "--mute-audio",
               f"--user-data-dir={profile_dir}", *mode, url]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def flamegraph(dynoprof_bin, tmp_path_factory):
    """Path of an SVG flame graph of the known profile."""
    tmp = tmp_path_factory.mktemp("svg")
    folded = tmp / "known.folded"
    folded.write_text(KNOWN_FOLDED)
    svg = tmp / "known.svg"
    proc = subprocess.run([dynoprof_bin, "report", "-q", "-i", str(folded), "-o", str(svg)],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if proc.returncode == 0 and svg.exists() and svg.stat().st_size:
        return str(svg)
    if os.path.exists(UNIT_TEST_SVG):
        print(f"dynoprof report failed ({proc.stderr.strip()}); using {UNIT_TEST_SVG}")
        return UNIT_TEST_SVG
    pytest.fail(f"no SVG: dynoprof report failed ({proc.stderr.strip()}) and "
                f"{UNIT_TEST_SVG} is missing (run .output/tests/test_svg)")


def file_url(path, fragment=""):
    return "file://" + urllib.parse.quote(os.path.abspath(path)) + fragment


def fragment(**params):
    return "#" + "&".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in params.items())


def read_png(path):
    """Decodes an 8-bit RGB/RGBA non-interlaced PNG: (width, height, rows of (r,g,b))."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG {header}"
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        filt = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if filt == 1:
                line[i] = (line[i] + a) & 0xff
            elif filt == 2:
                line[i] = (line[i] + b) & 0xff
            elif filt == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xff
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return width, height, rows


def screenshot(url, out, size="1200,400"):
    run_chromium(url, f"--screenshot={out}", f"--window-size={size}")
    assert os.path.exists(out), "chromium wrote no screenshot"
    return read_png(out)


def count_pixels(rows, predicate):
    return sum(1 for row in rows for px in row if predicate(px))


def is_kernel_orange(px):
    r, g, b = px
    return r > 220 and 105 <= g <= 160 and b < 40


def is_python_green(px):
    r, g, b = px
    return r < 115 and g > 180 and b < 175


def is_magenta(px):
    return px == (230, 0, 230)


def dump_dom(url):
    return run_chromium(url, "--dump-dom")


def text_element(dom, element_id):
    # The script mentions the elements too: look only at the markup.
    markup = re.sub(r"<script.*?</script>", "", dom, flags=re.S)
    m = re.search(r'<text id="%s"[^>]*>(.*?)</text>' % re.escape(element_id), markup, re.S)
    assert m, f"no <text id={element_id}> in the page:\n{markup[:2000]}"
    return html.unescape(m.group(1))


def test_screenshot_looks_like_a_flame_graph(flamegraph, tmp_path):
    width, height, rows = screenshot(file_url(flamegraph), str(tmp_path / "graph.png"))
    assert (width, height) == (1200, 400)
    colours = {px for row in rows for px in row}
    assert len(colours) > 50, f"screenshot nearly blank: {len(colours)} colours"
    # Frames are drawn: the "all" row spans the width in grey; kernel frames are
    # orange, Python frames green (compute alone is half the width).
    assert count_pixels(rows, is_kernel_orange) > 1000
    assert count_pixels(rows, is_python_green) > 20000
    grey_row = max(sum(1 for px in row if abs(px[0] - px[1]) < 8 and abs(px[1] - px[2]) < 20
                       and 150 < px[0] < 230) for row in rows)
    assert grey_row > 0.9 * FRAMES_WIDTH, "no full-width grey root frame"
    assert count_pixels(rows, is_magenta) == 0


def test_hover_zoom_search_reset(flamegraph):
    name = "compute (app.py:30)"
    dom = dump_dom(file_url(flamegraph, fragment(selftest=name)))
    result = json.loads(text_element(dom, "selftest"))
    assert "error" not in result, result
    assert result["frames"] == FRAMES
    # Hover: the details line names the function with its samples and share.
    assert result["details"] == "compute (app.py:30) (50 samples, 50.00%)"
    assert result["details_after_out"].strip() == ""
    # Click: the frame fills the width, its 7 ancestors (all, python3, _start,
    # main, Py_RunMain, main (app.py:10), handle) stay as full-width parents,
    # every other frame is hidden, and "Reset Zoom" appears.
    assert result["zoom_x"] == pytest.approx(10, abs=0.01)
    assert result["zoom_width"] == pytest.approx(FRAMES_WIDTH, abs=0.01)
    assert result["zoom_label"] == name
    assert result["zoom_parents"] == result["zoom_depth"] == 7
    assert result["zoom_hidden"] == FRAMES - 8
    assert result["unzoom_shown"] is True
    # Search: one frame highlighted, half the samples matched.
    assert result["highlighted"] == 1
    assert result["search_pct"] == pytest.approx(50)
    assert result["matched"] == "Matched: 50.00%"
    assert result["search_button"] == "Reset Search"
    # Reset Zoom: everything back, compute at half the width, button hidden.
    assert result["reset_hidden"] == 0
    assert result["reset_width"] == pytest.approx(FRAMES_WIDTH / 2, abs=0.01)
    assert result["unzoom_shown_after_reset"] is False


def test_selftest_reports_unknown_frame(flamegraph):
    dom = dump_dom(file_url(flamegraph, fragment(selftest="no_such_function")))
    result = json.loads(text_element(dom, "selftest"))
    assert result["error"] == "no frame named no_such_function"


def test_link_opens_zoomed_and_searched(flamegraph, tmp_path):
    # Zoomed into handle (80 samples), searching the kernel entry and JSON parsing:
    # entry_SYSCALL_64 is 10 + 20 samples (nginx's too, though hidden), parse_json 20.
    url = file_url(flamegraph, fragment(zoom="handle (app.py:20)",
                                        search="entry_SYSCALL|parse_json"))
    dom = dump_dom(url)
    assert text_element(dom, "matched") == "Matched: 50.00%"
    markup = re.sub(r"<script.*?</script>", "", dom, flags=re.S)
    assert re.search(r'<text id="unzoom"(?![^>]*class="hide")[^>]*>Reset Zoom</text>', markup)
    width, _, rows = screenshot(url, str(tmp_path / "zoomed.png"))
    # Both matches of the zoomed python3 subtree are visible in magenta:
    # parse_json is 20/80 of the width, entry_SYSCALL_64 10/80.
    magenta = count_pixels(rows, is_magenta)
    expected = (20 + 10) / 80 * FRAMES_WIDTH * 15
    assert 0.8 * expected < magenta < 1.2 * expected, (magenta, expected)

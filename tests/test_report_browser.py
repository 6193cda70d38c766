"""Opt-in: `report --html` rendered by headless Chromium (Debian's `chromium`), offline.

Every request the browser would make goes to a recording HTTP proxy on 127.0.0.1 (loopback
included), which answers none; the page must make none, and its screenshot must not be blank.
Skipped when no chromium is installed (`apt-get install chromium`).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from monitor.cli import cli
from monitor.cli.options import Settings

from conftest import T0, Clock
from test_report_html import recorded  # noqa: F401  (the fixture)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"), pytest.mark.slow]


class Recorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def _record(self) -> None:
        Recorder.seen.append(f"{self.command} {self.path}")
        self.send_error(502)

    do_GET = do_POST = do_HEAD = do_CONNECT = _record

    def log_message(self, *args: object) -> None:
        pass


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the filtered scanlines of a PNG (stdlib only: zlib)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    return width, height, zlib.decompress(idat)


#: Chromium's own calls home (its clock, component updates) whatever the page: not the page's.
BROWSER_HOSTS = re.compile(r"(^|\.)(google\.com|googleapis\.com|gvt1\.com|gstatic\.com)(:\d+)?$")


def render(page: Path, shot: Path, profile: Path, *, dark: bool = False) -> list[str]:
    """Screenshot `page` with Chromium, every request going to a recording proxy; return the hosts
    the page asked for (the browser's own calls aside)."""
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    Recorder.seen = []
    try:
        run = subprocess.run(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-default-apps", f"--user-data-dir={profile}",
             f"--proxy-server=http://127.0.0.1:{proxy.server_port}", "--proxy-bypass-list=<-loopback>",
             *(["--force-dark-mode"] if dark else []),
             "--window-size=1100,1600", "--virtual-time-budget=3000", f"--screenshot={shot}", page.as_uri()],
            capture_output=True, text=True, timeout=120)
    finally:
        proxy.shutdown()
    assert run.returncode == 0, run.stderr[-2000:]
    targets = [seen.split(" ", 1)[1] for seen in Recorder.seen]  # a URL, or host:port for CONNECT
    hosts = [urlsplit(target if "://" in target else f"//{target}").netloc for target in targets]
    return [host for host in hosts if not BROWSER_HOSTS.search(host)]


def test_the_harness_sees_a_page_that_fetches(tmp_path):
    """The control: a page with an image and a script from elsewhere is caught."""
    page = tmp_path / "leaky.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://leak.example/pixel.png">'
                    '<script src="https://cdn.example/chart.js"></script>x</body></html>', encoding="utf-8")
    asked = render(page, tmp_path / "leaky.png", tmp_path / "profile")
    assert "leak.example" in asked and "cdn.example:443" in asked


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_chromium_renders_the_report_offline(recorded, db_path, tmp_path, scheme):  # noqa: F811
    page = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", "--html", str(page), "--db", str(db_path)],
                                obj=Settings(now=Clock(T0)))
    assert result.exit_code == 0, result.output
    shot = tmp_path / f"report-{scheme}.png"
    assert render(page, shot, tmp_path / "profile", dark=scheme == "dark") == []  # not one request
    width, height, pixels = png_pixels(shot)
    assert (width, height) == (1100, 1600)
    # Not blank: a blank page's scanlines hold a handful of byte values; charts and text hold hundreds.
    assert len(set(pixels)) > 100
    if os.environ.get("MONITOR_SCREENSHOTS"):  # to look at them
        shutil.copy(shot, Path(os.environ["MONITOR_SCREENSHOTS"]) / shot.name)

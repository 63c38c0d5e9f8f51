"""Benchmark of the remote desktop (`slicer-cloud desktop`) with its fallback viewer.

Measures, in real headless Chromium on loopback:

* start to first frame: from launching the command to the program's window on the page's canvas;
* traffic (server to browser, through the websocket) while idle, while the 3D view spins and
  while the slice view scrolls (the viewer's Space and ``a`` keys, 20 steps a second);
* memory of the whole process tree (service, Xvnc, openbox, terminal, viewer).

Run: ``.venv/bin/python -m benchmarks.desktop [--runs 3] [--seconds 10] [--screenshot]``.
Writes its section of docs/benchmarks.md (and, with --screenshot, docs/img/desktop.png).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import machine_line, markdown_table, write_section
from slicer_cloud.desktop import proctree

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
VIEWPORT = {"width": 1280, "height": 800}
TOKEN = "benchmark-token"

# The element showing the remote screen: noVNC's canvas, or the largest visible canvas/video of
# the selkies client. Its pixels are read through an offscreen 2D canvas, so both read alike.
SCREEN_JS = """
window.__screen = () => {
  let best = null, area = 0;
  for (const el of document.querySelectorAll('canvas, video')) {
    const r = el.getBoundingClientRect();
    if (r.width * r.height > area && getComputedStyle(el).visibility !== 'hidden') { best = el; area = r.width * r.height; }
  }
  return best;
};
window.__grab = (x, y, w, h) => {
  const el = window.__screen();
  if (!el) return null;
  const W = el.videoWidth || el.width, H = el.videoHeight || el.height;
  if (!W || !H) return null;
  if (!window.__off) window.__off = document.createElement('canvas');
  const off = window.__off;
  if (w === undefined) { x = 0; y = 0; w = W; h = H; }
  off.width = w; off.height = h;
  const ctx = off.getContext('2d', {willReadFrequently: true});
  ctx.drawImage(el, x, y, w, h, 0, 0, w, h);
  return ctx.getImageData(0, 0, w, h).data;
};
"""

# Counts the fallback viewer's magenta band on the screen (every 4th pixel).
BAND_PIXELS_JS = """() => {
  const data = window.__grab && window.__grab();
  if (!data) return 0;
  let n = 0;
  for (let i = 0; i < data.length; i += 16) {
    if (data[i] > 215 && data[i + 1] < 40 && data[i + 2] > 215) n++;
  }
  return n;
}"""
BAND_MIN_PIXELS = 1500

# Counts the changes of one screen region on every animation frame: the screen updates the
# browser actually shows there (at most the display rate, 60/s). Also times input to changed
# pixels: a keydown stamps the time, the first change after it ends the wait.
SAMPLER_JS = """(region) => {
  window.__updates = 0;
  window.__sampling = true;
  window.__latencies = [];
  window.__keyAt = null;
  if (!window.__keyHooked) {
    window.addEventListener('keydown', () => { window.__keyAt = performance.now(); }, true);
    window.__keyHooked = true;
  }
  let last = null;
  function tick() {
    const data = window.__grab(region.x, region.y, region.w, region.h);
    if (data) {
      let hash = 0;
      for (let i = 0; i < data.length; i += 4) hash = (hash * 31 + data[i] + 7 * data[i + 1] + 13 * data[i + 2]) | 0;
      if (last !== null && hash !== last) {
        window.__updates++;
        if (window.__keyAt !== null) { window.__latencies.push(performance.now() - window.__keyAt); window.__keyAt = null; }
      }
      last = hash;
    }
    if (window.__sampling) requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
}"""

# The band's bounding box on the screen: where the viewer window is.
BAND_BOX_JS = """() => {
  const el = window.__screen();
  const W = el.videoWidth || el.width, H = el.videoHeight || el.height;
  const data = window.__grab();
  let x0 = 1e9, y0 = 1e9, x1 = -1, y1 = -1;
  for (let y = 0; y < H; y += 2) for (let x = 0; x < W; x += 2) {
    const i = 4 * (y * W + x);
    if (data[i] > 215 && data[i + 1] < 40 && data[i + 2] > 215) {
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
    }
  }
  const r = el.getBoundingClientRect();
  return {x0, y0, x1, y1, left: r.left, top: r.top, scale: r.width / W};
}"""

TRANSPORTS = ("novnc", "selkies")


def start_service(tmp: Path, transport: str = "novnc") -> tuple[subprocess.Popen, str, float]:
    # HOME is the data folder, so the terminal's prompt in the screenshot reads '~'.
    env = dict(os.environ, SLICER_CLOUD_CACHE_DIR=str(tmp / "cache"), HOME=str(tmp))
    env.pop("SLICER_EXECUTABLE", None)
    command = [sys.executable, "-m", "slicer_cloud.cli", "desktop", "--port", "0", "--token", TOKEN, "--data", str(tmp),
               "--transport", transport]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert process.stdout is not None
    for _ in range(200):
        line = process.stdout.readline()
        match = re.search(r"Serving on (\S+)", line)
        if match:
            return process, match.group(1), started
        if not line:
            break
    process.kill()
    raise SystemExit("the desktop did not start")


def stop_service(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def wait_band(page, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.evaluate(BAND_PIXELS_JS) >= BAND_MIN_PIXELS:
            return
        time.sleep(0.02)
    raise SystemExit("the fallback viewer never appeared on the page")


def open_screen(page, url: str) -> None:
    page.add_init_script(SCREEN_JS)
    page.goto(url)


def measure_start(browser, tmp: Path, transport: str = "novnc") -> dict[str, float]:
    process, url, started = start_service(tmp, transport)
    serving = time.perf_counter() - started
    try:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        opened = time.perf_counter()
        open_screen(page, url)
        wait_band(page)
        shown = time.perf_counter()
        context.close()
    finally:
        stop_service(process)
    return {"serving": serving, "page_to_frame": shown - opened, "start_to_frame": shown - started}


def pss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure_traffic_and_memory(
    browser, tmp: Path, seconds: float, screenshot: Path | None, transport: str = "novnc", presses: int = 8
) -> tuple[list[list[object]], list[list[object]], list[float]]:
    process, url, _ = start_service(tmp, transport)
    received = {"bytes": 0, "messages": 0}

    def on_websocket(ws) -> None:
        def on_frame(payload) -> None:
            received["bytes"] += len(payload)
            received["messages"] += 1

        ws.on("framereceived", on_frame)

    try:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.on("websocket", on_websocket)
        open_screen(page, url)
        wait_band(page)
        time.sleep(2.0)  # let the first full screen and the banner's resize settle
        band = page.evaluate(BAND_BOX_JS)
        # The band is the top of the viewer window; a click there gives it the keyboard.
        page.mouse.click(band["left"] + band["scale"] * (band["x0"] + band["x1"]) / 2, band["top"] + band["scale"] * (band["y0"] + band["y1"]) / 2)
        time.sleep(1.0)
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot))
        # Under the band: the slice view on the left half, the 3D view on the right half.
        half = (band["x1"] - band["x0"]) // 2
        views = {
            # lower left of the slice view: part of the image and the "slice k/N" label
            "slice": {"x": band["x0"] + 2, "y": band["y1"] + 300, "w": 200, "h": 200},
            "3d": {"x": band["x0"] + half + half // 2 - 100, "y": band["y1"] + 150, "w": 200, "h": 200},
        }

        def window(label: str, key: str | None, view: str) -> list[object]:
            if key:
                page.keyboard.press(key)
                time.sleep(1.0)  # warm-up: the first frames after a key are larger
            page.evaluate(SAMPLER_JS, views[view])
            before_bytes, before_messages = received["bytes"], received["messages"]
            t0 = time.perf_counter()
            time.sleep(seconds)
            elapsed = time.perf_counter() - t0
            updates = page.evaluate("() => { window.__sampling = false; return window.__updates; }")
            rate = (received["bytes"] - before_bytes) / elapsed
            messages = (received["messages"] - before_messages) / elapsed
            if key:
                page.keyboard.press(key)
                time.sleep(1.0)
            return [transport, label, f"{rate / 1024:.0f}", f"{updates / elapsed:.1f}", f"{messages:.1f}"]

        def input_latency() -> list[float]:
            """Key press (PageUp/PageDown: ten slices) to changed pixels of the slice view, ms."""
            page.evaluate(SAMPLER_JS, views["slice"])
            found: list[float] = []
            for n in range(presses):
                time.sleep(0.8)  # quiet screen before each press
                page.evaluate("() => { window.__latencies = []; }")
                page.keyboard.press("PageUp" if n % 2 == 0 else "PageDown")
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    got = page.evaluate("() => window.__latencies")
                    if got:
                        found.append(got[0])
                        break
                    time.sleep(0.02)
            page.evaluate("() => { window.__sampling = false; }")
            return found

        traffic = [
            window("idle (nothing moves)", None, "3d"),
            window("3D view spinning (20 steps/s of 4 degrees)", "Space", "3d"),
            window("slice view scrolling (20 slices/s)", "a", "slice"),
        ]
        latencies = input_latency()
        memory = []
        total_rss = total_pss = 0
        for info in proctree.tree_memory(process.pid):
            name = {"python": "fallback viewer (VTK)", "bash": "shell in the terminal"}.get(info.name, info.name)
            with contextlib.suppress(OSError):
                if b"selkies" in Path(f"/proc/{info.pid}/cmdline").read_bytes():
                    name = "stream server (selkies)"
            if info.pid == process.pid:
                name = "service (web, bridge, supervisor)"
            pss = pss_bytes(info.pid)
            total_rss += info.rss_bytes
            total_pss += pss
            memory.append([name, f"{info.rss_bytes / 1024**2:.0f}", f"{pss / 1024**2:.0f}"])
        memory.append(["**whole tree**", f"**{total_rss / 1024**2:.0f}**", f"**{total_pss / 1024**2:.0f}**"])
        context.close()
    finally:
        stop_service(process)
    return traffic, memory, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold starts to time per transport (median reported)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each traffic window")
    parser.add_argument("--presses", type=int, default=8, help="key presses timed to changed pixels per transport")
    parser.add_argument("--transports", default=",".join(TRANSPORTS), help="comma-separated: novnc,selkies")
    parser.add_argument("--screenshot", action="store_true", help="also write docs/img/desktop.png (noVNC)")
    args = parser.parse_args()
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    transports = [t for t in args.transports.split(",") if t]

    from playwright.sync_api import sync_playwright

    starts: dict[str, list[dict[str, float]]] = {}
    traffic: list[list[object]] = []
    memory: list[list[object]] = []
    latency_rows: list[list[object]] = []
    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="desktop-bench-") as tmp_name:
        tmp = Path(tmp_name)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for transport in transports:
            starts[transport] = [measure_start(browser, tmp, transport) for _ in range(args.runs)]
            screenshot = ROOT / "docs" / "img" / "desktop.png" if args.screenshot and transport == "novnc" else None
            rows, mem, latencies = measure_traffic_and_memory(browser, tmp, args.seconds, screenshot, transport, args.presses)
            traffic += rows
            memory += [[transport, *row] for row in mem]
            latency_rows.append([
                transport, f"{len(latencies)}/{args.presses}",
                f"{statistics.median(latencies):.0f}" if latencies else "n/a",
                f"{max(latencies):.0f}" if latencies else "n/a",
            ])  # fmt: skip
        browser.close()
    load = os.getloadavg()

    def median(transport: str, key: str) -> str:
        return f"{statistics.median(run[key] for run in starts[transport]):.2f}"

    start_table = markdown_table(
        ["transport", "command start to `Serving on` s", "page open to the window on screen s", "**command start to first frame** s"],
        [[t, median(t, "serving"), median(t, "page_to_frame"), f"**{median(t, 'start_to_frame')}**"] for t in transports],
    )
    traffic_table = markdown_table(
        ["transport", "while (%.0f s each)" % args.seconds, "KiB/s to the browser", "view updates/s seen in the browser", "websocket messages/s"],
        traffic,
    )
    latency_table = markdown_table(
        ["transport", "presses answered", "key to changed pixels, median ms", "longest ms"], latency_rows
    )
    memory_table = markdown_table(["transport", "process", "RSS MiB", "PSS MiB"], memory)
    body = f"""## Remote desktop (`python -m benchmarks.desktop`)

{machine_line()} Load average during the run: {load[0]:.1f} (the machine was shared).

`slicer-cloud desktop` with the fallback program (no Slicer binary here: xterm and a VTK viewer
of the 256x256x128 sample CT, window 900x560), browser viewport 1280x800 so the remote screen is
resized to the page; headless Chromium on loopback, {args.runs} cold starts per transport (median).
**novnc**: VNC Tight encoding through our websocket bridge (noVNC quality 6, compression 2).
**selkies**: selkies 2.1 capturing the same Xvnc screen, H.264 by x264 in software (its default
`--framerate 60`, CRF encoder settings untouched), decoded by Chromium's WebCodecs, through our
token-checked proxy. View updates are counted by sampling the shown pixels on every animation
frame (at most 60/s); input latency is a key press (PageUp/PageDown, ten slices) to the first
changed pixels of the slice view, both stamped in the page's clock.

{start_table}

{traffic_table}

{latency_table}

Reading the figures: selkies keeps sending frames while nothing moves (its encoder refines the
picture, so pixels change a little on every frame), so its "updates seen" include those and are
not comparable with noVNC's, which are content changes only. The comparable figures are the bytes
per second (selkies needs about a third less while the 3D view spins, about the same while slices
scroll) and the input latency, where selkies is slower on this machine: the x264 encoder in
software competes for the two cores with the viewer, Xvnc and Chromium (load average above), and
selkies starts 7 s later (its server's imports). With a spare core, or a hardware encoder, the
encoder's share shrinks; on this busy CPU noVNC stays the better default.

Memory of the whole process tree, idle after the runs above:

{memory_table}
"""
    write_section("desktop", body)
    print(body)


if __name__ == "__main__":
    main()

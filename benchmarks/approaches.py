"""The ways to use Slicer remotely, side by side: the same volume, the same headless Chromium, the
same task (first image, scroll slices, turn the 3D view) in each approach, in one run.

    python -m benchmarks.approaches [--quick] [--seconds 5]

Approaches: the remote desktop (noVNC and selkies transports; the fallback VTK viewer stands in for
the Slicer application, which is not installed here), the web viewer (server rendering), and the
compute API (a slice and a 3D view rendered to PNG per request). Writes its section of
docs/benchmarks.md and docs/img/approaches.png. Every loop is bounded in time and count.
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
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.report import machine_line, markdown_table, write_section

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "benchmark-token"
START_TIMEOUT_S = 240.0
#: what each approach needs installed on the server (the browser needs nothing but itself)
NEEDS = {
    "desktop (noVNC)": "Xvnc (TigerVNC), openbox, noVNC (Debian); the Slicer application (~1 GB)",
    "desktop (selkies)": "as noVNC, plus the selkies wheel (x264 inside); browser with WebCodecs",
    "web viewer (server rendering)": "slicer-cloud (trame-slicer, slicer-core, VTK wheels); Mesa EGL",
    "compute API (PNG per request)": "slicer-cloud (slicer-core, VTK wheels); Mesa EGL; a script or client",
}


NAMES = {"desktop": "desktop (noVNC)", "selkies": "desktop (selkies)", "viewer": "web viewer (server rendering)",
         "api": "compute API (PNG per request)"}


@dataclass
class Row:
    """One approach on one volume; None where not measured (with the reason in ``note``)."""

    approach: str
    volume: str
    first_image_s: float | None = None
    slice_fps: float | None = None
    slice_bytes_per_frame: float | None = None
    rotate_fps: float | None = None
    rotate_bytes_per_s: float | None = None
    longest_wait_s: float | None = None
    memory_mib: float | None = None
    note: str = ""
    waits: list[float] = field(default_factory=list, repr=False)


def rate(count: int, seconds: float) -> float:
    """Events per second over a window; 0 for an empty or zero-length one."""
    return count / seconds if seconds > 0 and count > 0 else 0.0


def per_frame(byte_count: int, frames: int) -> float | None:
    """Mean bytes per frame; None when no frame came (nothing to divide by)."""
    return byte_count / frames if frames > 0 else None


def fmt(value: float | None, pattern: str) -> str:
    return "n/a" if value is None else pattern.format(value)


def log(text: str) -> None:
    print(f"[approaches {time.strftime('%H:%M:%S')}] {text}", flush=True)


class Prober:
    """A plain HTTP request every 100 ms while an interaction runs; keeps the longest wait."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, limit: int = 2000):
        self.url, self.headers, self.limit = url, headers or {}, limit
        self.waits: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(headers=self.headers, timeout=60) as client:
            while not self._stop.is_set() and len(self.waits) < self.limit:
                t0 = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):
                    client.get(self.url)
                self.waits.append(time.perf_counter() - t0)
                self._stop.wait(max(0.0, 0.1 - self.waits[-1]))

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=90)


def tree_pss_mib(pid: int) -> float:
    from benchmarks.desktop import pss_bytes
    from slicer_cloud.desktop import proctree

    return sum(pss_bytes(info.pid) for info in proctree.tree_memory(pid)) / 1024**2


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _serving_url(process: subprocess.Popen, pattern: str = r"Serving on (\S+)") -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        match = re.search(pattern, line)
        if match:
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # never block on a full pipe
            return match.group(1)
    _stop(process)
    raise RuntimeError("the service did not start")


# --- remote desktop -----------------------------------------------------------------------------
def desktop(browser, work: Path, volume, transport: str, seconds: float) -> Row:
    from benchmarks.desktop import BAND_BOX_JS, BAND_PIXELS_JS, BAND_MIN_PIXELS, SAMPLER_JS, SCREEN_JS, VIEWPORT

    row = Row(f"desktop ({'noVNC' if transport == 'novnc' else 'selkies'})", volume.key)
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SLICER_CLOUD_CACHE_DIR=str(work / "cache"), HOME=str(work))
    env.pop("SLICER_EXECUTABLE", None)
    app = f"{sys.executable} -m slicer_cloud.desktop.fallback_viewer --volume {volume.path}"
    command = [sys.executable, "-m", "slicer_cloud.cli", "desktop", "--port", "0", "--token", TOKEN, "--data", str(work),
               "--transport", transport, "--app", app]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    received = {"bytes": 0}
    try:
        url = _serving_url(process)
        base = url.split("?")[0]
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.on("websocket", lambda ws: ws.on("framereceived", lambda p: received.__setitem__("bytes", received["bytes"] + len(p))))
        page.add_init_script(SCREEN_JS)
        page.goto(url)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and page.evaluate(BAND_PIXELS_JS) < BAND_MIN_PIXELS:
            time.sleep(0.05)
        # the viewer's window is up; its views fill in once the volume is read and its surface made
        time.sleep(1.0)
        row.first_image_s = time.perf_counter() - started
        band = page.evaluate(BAND_BOX_JS)
        page.mouse.click(band["left"] + band["scale"] * (band["x0"] + band["x1"]) / 2, band["top"] + band["scale"] * (band["y0"] + band["y1"]) / 2)
        half = (band["x1"] - band["x0"]) // 2
        views = {"slice": {"x": band["x0"] + 2, "y": band["y1"] + 300, "w": 200, "h": 200},
                 "3d": {"x": band["x0"] + half + half // 2 - 100, "y": band["y1"] + 150, "w": 200, "h": 200}}  # fmt: skip

        def window(key: str, view: str) -> tuple[float, int, float]:
            page.keyboard.press(key)  # the fallback viewer's toggles: 'a' scrolls slices, Space spins
            time.sleep(1.0)
            page.evaluate(SAMPLER_JS, views[view])
            b0, t0 = received["bytes"], time.perf_counter()
            time.sleep(seconds)
            elapsed = time.perf_counter() - t0
            updates = page.evaluate("() => { window.__sampling = false; return window.__updates; }")
            page.keyboard.press(key)
            time.sleep(0.5)
            return rate(updates, elapsed), received["bytes"] - b0, elapsed

        with Prober(base + "status", {"Authorization": f"Bearer {TOKEN}"}) as prober:
            row.slice_fps, slice_bytes, elapsed = window("a", "slice")
            row.slice_bytes_per_frame = per_frame(slice_bytes, round(row.slice_fps * elapsed))
            row.rotate_fps, rotate_bytes, elapsed = window("Space", "3d")
            row.rotate_bytes_per_s = rotate_bytes / elapsed
        row.longest_wait_s = max(prober.waits) if prober.waits else None
        row.memory_mib = tree_pss_mib(process.pid)
        context.close()
        if transport == "selkies":
            row.note = "selkies re-sends refined frames while idle: its frames/s count those too"
    finally:
        _stop(process)
    return row


# --- web viewer ---------------------------------------------------------------------------------
def web_viewer(browser, work: Path, volume, seconds: float) -> Row:
    from benchmarks.viewer_page import Page
    from benchmarks.viewer_servers import OURS, start

    row = Row("web viewer (server rendering)", volume.key)
    since = time.time()
    server = start(OURS, work, volume=volume.path)
    try:
        page = Page(browser, server.page_url)
        page.open()
        first_any, correct, _ = page.wait_axial(since, timeout=START_TIMEOUT_S)
        row.first_image_s = correct if correct is not None else first_any
        page.wait_views(2)
        time.sleep(3.0)
        probes = [(server.front_door_url(), server.headers)]
        scroll = page.scroll(seconds, probes)
        row.slice_fps = scroll.frames.per_second
        row.slice_bytes_per_frame = scroll.frames.mean_bytes or None
        drag = page.drag(1, seconds, probes)
        row.rotate_fps = drag.frames.per_second
        row.rotate_bytes_per_s = drag.frames.per_second * drag.frames.mean_bytes
        waits = [w for w in scroll.longest_waits + drag.longest_waits if w is not None]
        row.longest_wait_s = max(waits) if waits else None
        row.memory_mib = server.memory()[1] / 1024**2
        page.close()
    finally:
        server.stop()
    return row


# --- compute API --------------------------------------------------------------------------------
def compute_api(work: Path, volume, seconds: float) -> Row:
    row = Row("compute API (PNG per request)", volume.key)
    data = work / f"api-{volume.key}"
    data.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "slicer_cloud.cli", "api", "--data", str(data), "--port", "0", "--token", TOKEN, "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=dict(os.environ, VTK_DEFAULT_OPENGL_WINDOW="vtkEGLRenderWindow"),
    )  # fmt: skip
    try:
        base = re.match(r"(http://[^/]+)", _serving_url(process, r"Serving on (http://\S+)")).group(1)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=base, headers=headers, timeout=300) as client:
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/api/health").status_code == 200:
                        break
                time.sleep(0.1)
            from slicer_cloud.client import Client

            with Client(base, TOKEN, timeout_s=600) as uploader:
                item = uploader.upload(volume.path)
            first = client.get(f"/api/items/{item['id']}/slice.png").raise_for_status()
            row.first_image_s = time.perf_counter() - started
            with Prober(base + "/api/health", headers) as prober:
                count, size, t0 = 0, 0, time.perf_counter()
                while time.perf_counter() - t0 < seconds and count < 500:
                    size += len(client.get(f"/api/items/{item['id']}/slice.png", params={"index": 10 + count % 60}).content)
                    count += 1
                elapsed = time.perf_counter() - t0
                row.slice_fps, row.slice_bytes_per_frame = rate(count, elapsed), per_frame(size, count)
                views = ["anterior", "left", "posterior", "right"]
                count, size, refused, t0 = 0, 0, [], time.perf_counter()
                while (time.perf_counter() - t0 < seconds or count + len(refused) == 0) and count + len(refused) < 50:
                    answer = client.get(f"/api/items/{item['id']}/render.png", params={"view": views[count % 4], "preset": "CT-Bone"})
                    if answer.status_code == 200:  # only images count as frames
                        size += len(answer.content)
                        count += 1
                    else:
                        refused.append(answer.status_code)
                elapsed = time.perf_counter() - t0
                row.rotate_fps, row.rotate_bytes_per_s = rate(count, elapsed), size / elapsed
                if refused:
                    row.note = f"3D: {len(refused)} render(s) refused (HTTP {refused[0]}) after {elapsed:.0f} s"
            row.longest_wait_s = max(prober.waits) if prober.waits else None
            del first
        row.memory_mib = tree_pss_mib(process.pid)
    finally:
        _stop(process)
    return row


# --- report -------------------------------------------------------------------------------------
def chart(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    approaches = list(dict.fromkeys(r.approach for r in rows))
    volumes = list(dict.fromkeys(r.volume for r in rows))
    metrics = [("first_image_s", "command to first image (s, lower is better)"),
               ("slice_fps", "slice scrolling (frames/s)"), ("rotate_fps", "3D rotation (frames/s)"),
               ("memory_mib", "server memory per user (MiB PSS)")]  # fmt: skip
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 4.2))
    width = 0.8 / max(1, len(volumes))
    for ax, (attr, title) in zip(axes, metrics):
        for v, volume in enumerate(volumes):
            values = [next((getattr(r, attr) or 0 for r in rows if r.approach == a and r.volume == volume), 0) for a in approaches]
            ax.bar([i + v * width for i in range(len(approaches))], values, width, label=volume)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([i + width * (len(volumes) - 1) / 2 for i in range(len(approaches))])
        ax.set_xticklabels([a.replace(" (", "\n(") for a in approaches], fontsize=7, rotation=30, ha="right")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(rows: list[Row]) -> str:
    return markdown_table(
        ["approach", "volume", "command to first image s", "slice scroll frames/s", "bytes/frame KiB", "3D rotate frames/s",
         "3D KiB/s", "longest wait of a concurrent request s", "server memory MiB (PSS)", "note"],
        [[r.approach, r.volume, fmt(r.first_image_s, "{:.1f}"), fmt(r.slice_fps, "{:.1f}"),
          fmt(None if r.slice_bytes_per_frame is None else r.slice_bytes_per_frame / 1024, "{:.1f}"), fmt(r.rotate_fps, "{:.2f}"),
          fmt(None if r.rotate_bytes_per_s is None else r.rotate_bytes_per_s / 1024, "{:.0f}"), fmt(r.longest_wait_s, "{:.2f}"),
          fmt(r.memory_mib, "{:.0f}"), r.note] for r in rows],
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small volume only (a smoke run)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each interaction window")
    parser.add_argument("--budget-min", type=float, default=16.0, help="start no new step after this many minutes")
    parser.add_argument("--skip", default="", help="comma-separated approaches to leave out: desktop,selkies,viewer,api")
    args = parser.parse_args(argv)
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    skip = set(filter(None, args.skip.split(",")))
    from playwright.sync_api import sync_playwright

    from benchmarks.viewer import make_volumes
    from benchmarks.viewer_page import CHROMIUM, CHROMIUM_ARGS

    rows: list[Row] = []
    began = time.monotonic()
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="bench-approaches-") as folder, sync_playwright() as playwright:
        work = Path(folder)
        volumes = make_volumes(work, args.quick)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for volume in volumes:
            steps = [("desktop", lambda v=volume: desktop(browser, work / f"d-{v.key}", v, "novnc", args.seconds)),
                     ("selkies", lambda v=volume: desktop(browser, work / f"s-{v.key}", v, "selkies", args.seconds)),
                     ("viewer", lambda v=volume: web_viewer(browser, work / f"w-{v.key}", v, args.seconds)),
                     ("api", lambda v=volume: compute_api(work, v, args.seconds))]  # fmt: skip
            for name, step in steps:
                if name in skip:
                    continue
                if time.monotonic() - began > args.budget_min * 60:
                    rows.append(Row(NAMES[name], volume.key, note=f"not run: the run's {args.budget_min:.0f} min budget was spent"))
                    continue
                log(f"{name} on {volume.key}")
                try:
                    rows.append(step())
                except Exception as error:  # noqa: BLE001 - one approach failing is a result, not the end of the run
                    log(f"{name} on {volume.key} failed: {error!r}")
                    rows.append(Row(NAMES[name], volume.key, note=f"failed: {type(error).__name__}: {' '.join(str(error).split())[:120]}"))
                loads.append(os.getloadavg()[0])
                log(repr(rows[-1]))
        browser.close()
        labels = {v.key: v.label for v in volumes}
    image = ROOT / "docs" / "img" / "approaches.png"
    chart(rows, image)
    needs = markdown_table(["approach", "what the server needs installed"], [[k, v] for k, v in NEEDS.items()])
    body = f"""## The approaches side by side (`python -m benchmarks.approaches`)

{machine_line()} Load average during the run: {statistics.mean(loads):.1f} on average, {max(loads):.1f} at most
(the machine was shared with other work; the run took {(time.monotonic() - began) / 60:.1f} min).

One run, one headless Chromium on loopback, the same volumes ({"; ".join(f"{k}: {v}" for k, v in labels.items())}) and the
same task in each approach: the time from the command that starts the service to the first image
in front of the user, slice scrolling and 3D rotation for {args.seconds:.0f} s each (frames/s seen
in the browser, bytes), the longest wait of a plain HTTP request to the same service meanwhile,
and the memory of the service's whole process tree (PSS) for this one user.

- **desktop**: `slicer-cloud desktop --app "python -m slicer_cloud.desktop.fallback_viewer --volume …"`:
  the fallback VTK viewer **stands in for the Slicer application** (not installed here); its own
  keys scroll slices (20/s) and spin the 3D view (20 steps/s); frames are the changes of the shown
  pixels per animation frame; the first image is its window on screen. Chromium decodes selkies'
  H.264 with WebCodecs.
- **web viewer**: `slicer-cloud view VOLUME`, mouse wheel over the axial view (25 events/s) and a
  drag in the 3D view (volume rendering on), server rendering; the local (WebGL) 3D mode was not
  on main when this ran, so it is not in the table.
- **compute API**: `slicer-cloud api`, upload, then `slice.png` requests one after the other (a
  different slice each) and `render.png` of four views in turn (CT-Bone volume rendering); the
  first image is the first slice PNG after the command, upload included.
- **Jupyter** (a notebook's `Viewer` widget through `slicer-cloud serve`) is **not measured in this
  run** (not built into this benchmark yet); the widget embeds the same web viewer, so its figures
  after the first image follow the web viewer's, plus the Jupyter Server's memory (see the `serve`
  section).

{table(rows)}

![the approaches side by side](img/approaches.png)

{needs}
"""
    write_section("approaches", body)
    print(body)


if __name__ == "__main__":
    main()

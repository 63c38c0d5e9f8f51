"""What the viewer benchmark does in the browser (headless Chromium driven by Playwright).

Both viewers show each view as an ``img.image-display-area`` whose ``src`` becomes a new blob URL
for every frame pushed over the websocket. A script injected before the page loads watches those
``src`` changes (one change = one frame shown), records each frame's JPEG size (by wrapping
``URL.createObjectURL``) and judges whether the axial view shows a *correct* first slice:

* not blank: at least 5 % of the view is brighter than air (luminance > 24 of 255);
* fitted: the body's bounding box touches no edge of the view (not over-zoomed, not cut off) and
  spans at least 60 % of the view's width or height (not a tiny picture in a corner). The
  phantoms' body fills about 90 % of their field of view, so a view fitted to the volume shows it
  at 70-95 % of one side.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

VIEWS = "img.image-display-area"
AXIAL = 0  # the first view in both viewers' default layouts
VIEWPORT = {"width": 1280, "height": 860}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
MIN_BODY_FILL = 0.05
MIN_FIT = 0.60
AIR_LUMINANCE = 24
QUIET_TIMEOUT_S = 180.0

INIT_JS = """
(() => {
  if (window.__bench) return;
  const SEL = 'img.image-display-area';
  const B = window.__bench = { frames: [], first: null, firstAny: null, last: null, watch: 0, since: 0 };
  const sizes = new Map();
  const create = URL.createObjectURL;
  URL.createObjectURL = function (obj) {
    const url = create.call(URL, obj);
    if (obj && typeof obj.size === 'number' && sizes.size < 5000) sizes.set(url, obj.size);
    return url;
  };
  const canvas = document.createElement('canvas');
  B.judge = (img) => {
    const w = img.naturalWidth, h = img.naturalHeight;
    if (!w || !h) return { ok: false, why: 'no image' };
    const scale = Math.min(1, 320 / Math.max(w, h));
    const cw = Math.max(1, Math.round(w * scale)), ch = Math.max(1, Math.round(h * scale));
    canvas.width = cw; canvas.height = ch;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(img, 0, 0, cw, ch);
    const d = ctx.getImageData(0, 0, cw, ch).data;
    const cols = new Uint32Array(cw), rows = new Uint32Array(ch);
    let n = 0;
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        const i = (y * cw + x) * 4;
        if (0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2] > %(air)d) { cols[x]++; rows[y]++; n++; }
      }
    }
    // a row or column belongs to the body when a few of its pixels do (ignores JPEG specks)
    const x0 = cols.findIndex(c => c >= 3), x1 = cols.findLastIndex(c => c >= 3);
    const y0 = rows.findIndex(c => c >= 3), y1 = rows.findLastIndex(c => c >= 3);
    const fill = n / (cw * ch);
    if (x0 < 0 || y0 < 0) return { ok: false, why: 'blank', fill, w, h };
    const fit = Math.max((x1 - x0 + 1) / cw, (y1 - y0 + 1) / ch);
    const touches = x0 === 0 || y0 === 0 || x1 === cw - 1 || y1 === ch - 1;
    const ok = fill >= %(fill)f && !touches && fit >= %(fit)f;
    const why = ok ? 'correct' : (fill < %(fill)f ? 'blank' : (touches ? 'cut off (over-zoomed)' : 'too small'));
    return { ok, why, fill, fit, touches, w, h };
  };
  function seen(img) {
    const all = document.querySelectorAll(SEL);
    const index = Array.prototype.indexOf.call(all, img);
    const now = Date.now();
    if (B.frames.length < 100000) B.frames.push({ t: now, i: index, b: sizes.get(img.src) || 0 });
    sizes.delete(img.src);
    if (index === B.watch && !B.first && now >= B.since) {
      img.decode().then(() => {
        const verdict = B.judge(img);
        B.last = verdict;
        const t = Date.now();
        if (!B.firstAny && verdict.fill >= %(fill)f) B.firstAny = Object.assign({ t }, verdict);
        if (verdict.ok && !B.first) B.first = Object.assign({ t }, verdict);
      }).catch(() => {});
    }
  }
  new MutationObserver((mutations) => {
    for (const m of mutations) {
      if (m.type === 'attributes') {
        if (m.target.matches && m.target.matches(SEL) && m.target.src) seen(m.target);
      } else {
        for (const node of m.addedNodes) {
          if (node.nodeType !== 1) continue;
          const imgs = node.matches(SEL) ? [node] : node.querySelectorAll(SEL);
          for (const img of imgs) if (img.src) seen(img);
        }
      }
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['src'] });
})();
""" % {"air": AIR_LUMINANCE, "fill": MIN_BODY_FILL, "fit": MIN_FIT}


@dataclass
class Frames:
    count: int
    seconds: float
    mean_bytes: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


@dataclass
class Interaction:
    frames: Frames  # of the view, while the user acted
    longest_waits: list[float | None]  # one per probe URL, seconds
    catch_up_s: float | None  # from the last event to the view's last frame (None: never still)
    first_frame_s: float | None  # from the first event to the view's first new frame (None: none)


#: the "view" index under which frames the browser drew itself with WebGL are recorded (local 3D)
LOCAL_GL = -1

#: Counts animation frames in which the page drew with WebGL2 (vtk.js in local 3D): frames the
#: browser rendered itself, recorded like the streamed ones under view index LOCAL_GL.
GL_FRAMES_JS = """
(() => {
  if (window.__glFrames) return;
  window.__glFrames = true;
  let drew = false;
  const getContext = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {
    const gl = getContext.call(this, kind, ...rest);
    if (gl && kind === 'webgl2' && !gl.__counted) {
      gl.__counted = true;
      for (const name of ['drawArrays', 'drawElements', 'drawArraysInstanced', 'drawElementsInstanced']) {
        const draw = gl[name].bind(gl);
        gl[name] = (...args) => { drew = true; return draw(...args); };
      }
    }
    return gl;
  };
  const tick = () => {
    if (drew && window.__bench && window.__bench.frames.length < 100000) {
      window.__bench.frames.push({ t: Date.now(), i: %(view)d, b: 0 });
    }
    drew = false;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
""" % {"view": LOCAL_GL}


class Page:
    """One browser tab on one viewer, with the frame recorder installed."""

    def __init__(self, browser, url: str):
        self.context = browser.new_context(viewport=VIEWPORT)
        self.context.add_init_script(INIT_JS)
        self.context.add_init_script(GL_FRAMES_JS)
        self.page = self.context.new_page()
        self.ws_bytes = 0
        self.page.on("websocket", self._on_websocket)
        self.url = url

    def _on_websocket(self, ws) -> None:
        def on_frame(payload) -> None:
            if isinstance(payload, bytes):
                self.ws_bytes += len(payload)

        ws.on("framereceived", on_frame)

    def open(self) -> float:
        """Navigate; return the wall-clock time (epoch seconds) the navigation began."""
        opened = time.time()
        self.page.goto(self.url, wait_until="commit", timeout=180_000)
        return opened

    def close(self) -> None:
        self.context.close()

    # -- the first correct axial image -----------------------------------------------------
    def expect_new_image(self) -> float:
        """From now on, look for a correct axial image again; return now (epoch seconds)."""
        now = time.time()
        self.page.evaluate("(t) => { const B = window.__bench; B.first = null; B.firstAny = null; B.since = t; }", int(now * 1000))
        return now

    def wait_axial(self, since: float, *, timeout: float = 180.0, grace: float = 30.0) -> tuple[float, float | None, dict]:
        """Seconds from ``since`` (epoch) to the first non-blank axial image and to the first
        correct one (None when none came within ``grace`` seconds after the first image), and
        the verdict on the last image judged."""
        try:
            self.page.wait_for_function("() => window.__bench && window.__bench.firstAny", timeout=timeout * 1000, polling=100)
        except Exception as error:
            last = self.page.evaluate("() => window.__bench && window.__bench.last")
            raise RuntimeError(f"no axial image within {timeout:.0f} s (last seen: {last})") from error
        first_any = self.page.evaluate("() => window.__bench.firstAny")["t"] / 1000 - since
        correct = None
        try:
            self.page.wait_for_function("() => window.__bench.first", timeout=grace * 1000, polling=100)
            correct = self.page.evaluate("() => window.__bench.first")["t"] / 1000 - since
        except Exception:  # Playwright's timeout: the view stayed wrong
            pass
        return first_any, correct, self.page.evaluate("() => window.__bench.last")

    def wait_views(self, count: int = 1, timeout: float = 120.0) -> None:
        self.page.wait_for_function(
            f"() => document.querySelectorAll('{VIEWS}').length >= {count}", timeout=timeout * 1000
        )

    def view_box(self, index: int) -> dict:
        box = self.page.locator(VIEWS).nth(index).bounding_box()
        if box is None:
            raise RuntimeError(f"view {index} is not on the page")
        return box

    def view_size(self, index: int) -> str:
        box = self.view_box(index)
        return f"{box['width']:.0f}x{box['height']:.0f}"

    def frames_since(self, t_ms: int, view: int, until_ms: int | None = None) -> list[dict]:
        return self.page.evaluate(
            "([t, v, u]) => window.__bench.frames.filter(f => f.t >= t && f.i === v && (u === null || f.t <= u))",
            [t_ms, view, until_ms],
        )

    def wait_quiet(self, view: int, quiet_s: float = 1.5, timeout: float = 120.0, idle: Callable[[], bool] | None = None) -> bool:
        """Wait until ``view`` got no new frame for ``quiet_s`` and, given ``idle`` (is the
        server's CPU quiet right now?), the server has been idle for 1.5 s: a server working
        through queued events may send no frame for a long while."""
        deadline = time.monotonic() + timeout
        idle_since = None
        while time.monotonic() < deadline:
            now = time.monotonic()
            if idle is not None:
                idle_since = (idle_since or now) if idle() else None
            server_done = idle is None or (idle_since is not None and now - idle_since >= 1.5)
            last = self.last_frame_ms(view)
            if last and time.time() * 1000 - last >= quiet_s * 1000 and server_done:
                return True
            time.sleep(0.25)
        return False

    def last_frame_ms(self, view: int) -> int:
        return self.page.evaluate(
            "(v) => { const f = window.__bench.frames.filter(x => x.i === v); return f.length ? f[f.length - 1].t : 0; }",
            view,
        )

    def wait_new_frame(self, view: int, after_ms: int, timeout: float = 180.0) -> bool:
        try:
            self.page.wait_for_function(
                "([v, t]) => window.__bench.frames.some(f => f.i === v && f.t > t)",
                arg=[view, after_ms],
                timeout=timeout * 1000,
                polling=100,
            )
            return True
        except Exception:  # Playwright's timeout
            return False

    # -- interaction -----------------------------------------------------------------------
    def scroll(self, seconds: float, probes: list[tuple[str, dict]] = (), idle: Callable[[], bool] | None = None) -> Interaction:
        """Mouse wheel over the axial view, 25 events a second, back and forth within 30 slices
        of where it starts (never past the volume's end)."""
        box = self.view_box(AXIAL)
        self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

        def step(n: int) -> None:
            self.page.mouse.wheel(0, 100 if (n // 30) % 2 == 0 else -100)

        return self._interact(AXIAL, seconds, 1 / 25, step, probes, idle)

    def drag(
        self,
        view: int,
        seconds: float,
        probes: list[tuple[str, dict]] = (),
        idle: Callable[[], bool] | None = None,
        frames_of: int | None = None,
    ) -> Interaction:
        """Drag in ``view`` along a circle, a move every 40 ms; count the frames of ``frames_of``
        (default: the view's streamed images; LOCAL_GL: what the browser drew itself)."""
        box = self.view_box(view)
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        radius = min(box["width"], box["height"]) / 4
        self.page.mouse.move(cx + radius, cy)
        self.page.mouse.down()
        held = [True]

        def step(n: int) -> None:
            self.page.mouse.move(cx + radius * math.cos(n * 0.15), cy + radius * math.sin(n * 0.15))

        def release() -> None:
            if held.pop():
                self.page.mouse.up()
            held.append(False)

        try:
            counted = view if frames_of is None else frames_of
            return self._interact(counted, seconds, 0.04, step, probes, idle, before_quiet=release)
        finally:
            release()

    def _interact(self, view: int, seconds: float, period: float, step, probes, idle, before_quiet=None) -> Interaction:
        """Run ``step(n)`` every ``period`` for ``seconds`` while one thread per probe URL makes
        a plain HTTP request every 100 ms; keep probing until the view is still and the server
        idle again (it may still be working through queued events)."""
        stop = threading.Event()
        waits: list[list[float]] = [[] for _ in probes]
        threads = [
            threading.Thread(target=_probe, args=(url, headers, stop, waits[i]), daemon=True)
            for i, (url, headers) in enumerate(probes)
        ]
        for thread in threads:
            thread.start()
        try:
            start_ms = int(time.time() * 1000)
            t0 = time.perf_counter()
            n = 0
            while time.perf_counter() - t0 < seconds:
                step(n)
                n += 1
                pause = t0 + n * period - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
            if before_quiet is not None:
                before_quiet()
            end_ms = int(time.time() * 1000)
            still = self.wait_quiet(view, quiet_s=3.0, timeout=QUIET_TIMEOUT_S, idle=idle)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=QUIET_TIMEOUT_S)
        frames = self.frames_since(start_ms, view, end_ms)
        catch_up = max(0.0, (self.last_frame_ms(view) - end_ms) / 1000) if still else None
        after = self.frames_since(start_ms, view)
        return Interaction(
            first_frame_s=(after[0]["t"] - start_ms) / 1000 if after else None,
            frames=_frames(frames, (end_ms - start_ms) / 1000),
            longest_waits=[max(w) if w else None for w in waits],
            catch_up_s=catch_up,
        )

    def upload(self, selector: str, path: Path) -> tuple[float, float | None, dict]:
        """Choose ``path`` in the page's file input; seconds until the axial view shows it."""
        since = self.expect_new_image()
        self.page.locator(selector).first.set_input_files(str(path), timeout=600_000)
        return self.wait_axial(since, timeout=600)


def _frames(frames: list[dict], seconds: float) -> Frames:
    sizes = [f["b"] for f in frames if f["b"]]
    return Frames(count=len(frames), seconds=seconds, mean_bytes=statistics.mean(sizes) if sizes else 0.0)


def _probe(url: str, headers: dict, stop: threading.Event, waits: list[float]) -> None:
    """A plain GET every 100 ms (the next one right away when one took longer)."""
    with httpx.Client(headers=headers, timeout=120) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                client.get(url)
            except httpx.HTTPError:
                pass
            waited = time.perf_counter() - t0
            waits.append(waited)
            if len(waits) > 10_000:
                break
            stop.wait(max(0.0, 0.1 - waited))

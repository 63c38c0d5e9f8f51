"""Benchmark: the web viewer (`slicer-cloud view`) against trame-slicer's `medical-viewer`.

Same machine, same run, same volumes, a real headless Chromium (Playwright) on loopback. The two
viewers take turns (the order alternates each repetition), so background load hits both alike.

Measured (medians over the repetitions):

1. server start to page served, empty and with a volume preloaded;
2. page open to the first axial image and to the first *correct* one (see ``viewer_page``);
3. slice scrolling: mouse wheel over the axial view, frames/s shown and JPEG bytes per frame;
4. 3D: volume rendering on, then dragging the 3D view: frames/s, how long the view keeps
   updating after the mouse is released, and the longest wait of a plain HTTP request made
   every 100 ms meanwhile;
5. browser upload of the 512x512x300 CT until the axial view shows it correctly;
6. memory (RSS and PSS) of each server's whole process tree.

Run: ``.venv/bin/python -m benchmarks.viewer`` (about 15 minutes on 2 cores; writes its section of
docs/benchmarks.md) or ``--quick`` (tiny volume, one repetition, to check that it runs).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.report import DOC, machine_line, markdown_table, write_section
from benchmarks.viewer_page import AXIAL, CHROMIUM, CHROMIUM_ARGS, LOCAL_GL, QUIET_TIMEOUT_S, Interaction, Page
from benchmarks.viewer_servers import MEDICAL, OURS, Server, start

VIEWERS = (MEDICAL, OURS)
THREE_D = 1  # the 3D view's index in both default layouts
UPLOAD_INPUT = {MEDICAL: "input[type=file]", OURS: "#sc-upload-input"}  # trame-slicer: its "Open Files" VFileInput
CORRECT_GRACE_S = 30.0  # how long after the first axial image a correct one may still come


@dataclass(frozen=True)
class Volume:
    key: str
    label: str
    path: Path
    once: bool = False  # measured in the first repetition only (keeps the run near 15 minutes)


@dataclass
class Plan:
    reps: int = 3  # cold starts timed per viewer and volume
    browser_reps: int = 2  # of those, how many also open a page (first image, memory, upload)
    scroll_s: float = 5.0
    drag_s: float = 6.0
    quick: bool = False  # also: time the start on the server the browser then uses


@dataclass
class Results:
    """measure -> viewer -> values; notes -> viewer -> remarks."""

    values: dict[str, dict[str, list[float]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    notes: dict[str, dict[str, list[str]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))

    def add(self, measure: str, viewer: str, value: float | None) -> None:
        if value is not None:
            self.values[measure][viewer].append(value)

    def note(self, measure: str, viewer: str, text: str) -> None:
        if text not in self.notes[measure][viewer]:
            self.notes[measure][viewer].append(text)


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# -- volumes -----------------------------------------------------------------------------------
def make_volumes(folder: Path, quick: bool) -> list[Volume]:
    from slicer_cloud.core.phantom import make_phantom, write_nrrd

    specs = (
        [("tiny", (64, 64, 32), (4.0, 4.0, 8.0), False)]
        if quick
        else [("ct256", (256, 256, 128), (1.0, 1.0, 2.0), True), ("ct512", (512, 512, 300), (0.7, 0.7, 1.0), False)]
    )
    volumes = []
    for key, shape, spacing, once in specs:
        path = folder / f"{key}.nrrd"
        t0 = time.perf_counter()
        phantom = make_phantom(shape=shape, spacing=spacing)
        write_nrrd(path, phantom.array, phantom.spacing, phantom.origin, gzip=False)  # raw, like a scanner export
        label = f"{shape[0]}x{shape[1]}x{shape[2]} ({path.stat().st_size / 1e6:.0f} MB raw NRRD)"
        log(f"volume {label} written in {time.perf_counter() - t0:.1f} s")
        volumes.append(Volume(key, label, path, once))
    return volumes


# -- scenarios -----------------------------------------------------------------------------------
def wait_listening(server: Server) -> None:
    """The server answers its front door (trame-slicer: the page file; ours: the health route)."""
    import httpx

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.front_door_url(), timeout=30).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.kind} exited:\n{server.log_tail()}")
        time.sleep(0.1)
    raise RuntimeError(f"{server.kind} never answered")


def served(kind: str, work: Path, volume: Volume | None, results: Results, plan: Plan) -> Server | None:
    """Time start to page served; return the server when the browser may go on using it.

    Ours is normally not reused: the ``GET /`` that timed it took a session that stays assigned
    (and would count in its memory) until the idle timeout, so a fresh one is started."""
    key = f"served:{volume.key if volume else 'empty'}"
    server = start(kind, work, volume=volume.path if volume else None)
    try:
        seconds = server.wait_page_served()
    except BaseException:
        server.stop()
        raise
    results.add(key, kind, seconds)
    log(f"{kind}: page served {seconds:.2f} s after start ({volume.key if volume else 'empty'})")
    if kind == OURS and not plan.quick:
        server.stop()
        return None
    return server


def settle(server: Server, results: Results, measure: str) -> None:
    if not server.settle(sessions=None):
        results.note(measure, server.kind, "server still busy after 120 s")


def record_memory(server: Server, results: Results, measure: str) -> None:
    rss, pss, processes = server.memory()
    results.add(measure + ":rss", server.kind, rss / 1024**2)
    results.add(measure + ":pss", server.kind, pss / 1024**2)
    results.add(measure + ":procs", server.kind, processes)


def empty_scenario(browser, kind: str, work: Path, big: Volume, plan: Plan, rep: int, results: Results) -> None:
    """Empty server: start time; then memory idle and with one client, and the big upload."""
    server = served(kind, work, None, results, plan)
    if rep >= plan.browser_reps:
        if server is not None:
            server.stop()
        return
    server = server or start(kind, work, volume=None)
    try:
        wait_listening(server)
        settle(server, results, "mem:idle")
        record_memory(server, results, "mem:idle")
        page = Page(browser, server.page_url)
        try:
            page.open()
            page.wait_views(1)
            page.wait_new_frame(AXIAL, 0, timeout=120)
            settle(server, results, "mem:client")
            record_memory(server, results, "mem:client")
            first, correct, last = page.upload(UPLOAD_INPUT[kind], big.path)
            results.add(f"upload:{big.key}", kind, correct)
            if correct is None:
                results.note(f"upload:{big.key}", kind, f"shown after {first:.1f} s but {last.get('why')}")
            log(f"{kind}: upload of {big.key} shown after {first:.2f} s, correct after {correct}")
            settle(server, results, f"mem:uploaded:{big.key}")
            record_memory(server, results, f"mem:uploaded:{big.key}")
        finally:
            page.close()
    finally:
        server.stop()


def preloaded_scenario(browser, kind: str, work: Path, volume: Volume, plan: Plan, rep: int, results: Results) -> None:
    """Volume preloaded: start time; then the first image, memory and (once) interaction."""
    server = served(kind, work, volume, results, plan)
    if rep >= plan.browser_reps:
        if server is not None:
            server.stop()
        return
    server = server or start(kind, work, volume=volume.path)
    try:
        wait_listening(server)
        # ours: its spare session has started and preloaded the volume
        settle(server, results, f"first:{volume.key}")
        page = Page(browser, server.page_url)
        try:
            first, correct, last = page.wait_axial(page.open(), grace=CORRECT_GRACE_S)
            results.add(f"first:{volume.key}", kind, first)
            results.add(f"correct:{volume.key}", kind, correct)
            if correct is None:
                results.note(f"correct:{volume.key}", kind, f"none within {CORRECT_GRACE_S:.0f} s ({last.get('why')})")
            log(f"{kind}: {volume.key} first image {first:.2f} s, correct {correct}")
            settle(server, results, f"mem:loaded:{volume.key}")
            record_memory(server, results, f"mem:loaded:{volume.key}")
            if rep == 0:
                interactions(page, server, volume, plan, results)
        finally:
            page.close()
    finally:
        server.stop()


def probes_for(page: Page, server: Server) -> list[tuple[str, dict]]:
    """The server's front door; for ours also the tab's own session process (via the gateway)."""
    probes = [(server.front_door_url(), server.headers)]
    if server.kind == OURS:
        session_id = page.page.url.split("/s/")[1].split("/")[0]
        probes.append((server.base + f"s/{session_id}/index.html", server.headers))
    return probes


def record_interaction(results: Results, kind: str, name: str, done: Interaction) -> None:
    results.add(f"{name}:fps", kind, done.frames.per_second)
    results.add(f"{name}:kb", kind, done.frames.mean_bytes / 1000 if done.frames.count else None)
    results.add(f"{name}:catchup", kind, done.catch_up_s)
    results.add(f"{name}:first", kind, done.first_frame_s)
    if done.catch_up_s is None:
        results.note(f"{name}:catchup", kind, f"still updating {QUIET_TIMEOUT_S:.0f} s later")
    for i, wait in enumerate(done.longest_waits):
        results.add(f"{name}:http{i}", kind, wait)
    log(
        f"{kind}: {name}: {done.frames.count} frames in {done.frames.seconds:.1f} s, "
        f"{done.frames.mean_bytes / 1000:.1f} KB each, first after {done.first_frame_s} s, still after {done.catch_up_s} s, "
        f"longest HTTP waits {done.longest_waits}"
    )


def interactions(page: Page, server: Server, volume: Volume, plan: Plan, results: Results) -> None:
    kind, key = server.kind, volume.key
    results.note(f"size:{key}", kind, f"axial {page.view_size(AXIAL)}, 3D {page.view_size(THREE_D)}")
    probes = probes_for(page, server)
    idle = server.idle_checker()
    # As loaded: trame-slicer shows volume rendering in 3D at once, ours only slices.
    page.wait_quiet(AXIAL, quiet_s=1.0, timeout=QUIET_TIMEOUT_S, idle=idle)
    record_interaction(results, kind, f"scroll:{key}", page.scroll(plan.scroll_s, probes, idle))

    clicked_ms = int(time.time() * 1000)
    if kind == OURS:
        page.page.locator("#sc-vr-switch").click()
        local_switch = page.page.locator("#sc-local-3d-switch")
        if local_switch.is_visible() and local_switch.is_checked():
            # local 3D chosen for this browser (WebGL2, server without GPU): the browser renders
            if page.wait_new_frame(LOCAL_GL, clicked_ms, timeout=QUIET_TIMEOUT_S):
                page.wait_quiet(LOCAL_GL, quiet_s=2.0, timeout=QUIET_TIMEOUT_S, idle=idle)
                done = page.drag(THREE_D, plan.drag_s, probes, idle, frames_of=LOCAL_GL)
                record_interaction(results, kind, f"draglocal:{key}", done)
            else:
                results.note(f"draglocal:{key}:fps", kind, "the browser never drew the volume")
            clicked_ms = int(time.time() * 1000)
            local_switch.click()  # back to server rendering for the comparison below
        else:
            results.note(f"draglocal:{key}:fps", kind, "local 3D not chosen (no WebGL2 in this browser)")
        if not page.wait_new_frame(THREE_D, clicked_ms, timeout=QUIET_TIMEOUT_S):
            results.note(f"drag:{key}:fps", kind, "no 3D frame after turning volume rendering on")
    page.wait_quiet(THREE_D, quiet_s=2.0, timeout=QUIET_TIMEOUT_S, idle=idle)
    record_interaction(results, kind, f"drag:{key}", page.drag(THREE_D, plan.drag_s, probes, idle))
    if kind == OURS:  # trame-slicer's first scroll already had volume rendering on
        page.wait_quiet(AXIAL, quiet_s=1.0, timeout=QUIET_TIMEOUT_S, idle=idle)
        record_interaction(results, kind, f"scrollvr:{key}", page.scroll(plan.scroll_s, probes, idle))


# -- the report ----------------------------------------------------------------------------------
def cell(results: Results, measure: str, viewer: str, fmt: str, unit: str = "") -> str:
    values = results.values.get(measure, {}).get(viewer, [])
    notes = results.notes.get(measure, {}).get(viewer, [])
    text = (fmt.format(statistics.median(values)) + unit) if values else "n/a"
    if notes:
        text += " — " + "; ".join(notes)
    return text


def memory_cell(results: Results, measure: str, viewer: str) -> str:
    rss = results.values.get(measure + ":rss", {}).get(viewer, [])
    pss = results.values.get(measure + ":pss", {}).get(viewer, [])
    procs = results.values.get(measure + ":procs", {}).get(viewer, [])
    if not rss:
        return "n/a"
    return f"{statistics.median(rss):.0f} MiB (PSS {statistics.median(pss):.0f}; {statistics.median(procs):.0f} processes)"


def frames_cell(results: Results, name: str, viewer: str) -> str:
    fps = results.values.get(f"{name}:fps", {}).get(viewer, [])
    kb = results.values.get(f"{name}:kb", {}).get(viewer, [])
    notes = results.notes.get(f"{name}:fps", {}).get(viewer, [])
    if not fps:
        return "n/a"
    text = f"{statistics.median(fps):.1f}/s" + (f", {statistics.median(kb):.1f} KB each" if kb else "")
    return text + (" — " + "; ".join(notes) if notes else "")


def build_table(results: Results, volumes: list[Volume], big: Volume) -> str:
    rows: list[list[object]] = []

    def row(label: str, measure: str, fmt: str = "{:.1f}", unit: str = " s") -> None:
        rows.append([label, *(cell(results, measure, v, fmt, unit) for v in VIEWERS)])

    row("server start to page served, empty", "served:empty")
    for vol in volumes:
        row(f"server start to page served, {vol.label} preloaded", f"served:{vol.key}")
    for vol in volumes:
        row(f"page open to first axial image, {vol.key} preloaded", f"first:{vol.key}")
        row(f"page open to first **correct** axial image, {vol.key} preloaded", f"correct:{vol.key}")
    row(f"browser upload of the {big.label} until shown correctly", f"upload:{big.key}")
    for vol in volumes:
        key = vol.key
        if f"scroll:{key}:fps" not in results.values:
            continue
        rows.append([f"**{key}: view sizes** (default layouts)", *("; ".join(results.notes[f"size:{key}"][v]) for v in VIEWERS)])
        for name, what in (
            (f"scroll:{key}", "slice scrolling as loaded (trame-slicer: 3D volume rendering on; ours: off)"),
            (f"draglocal:{key}", "3D drag, local 3D (the browser renders: SwiftShader, on this CPU)"),
            (f"drag:{key}", "3D drag, volume rendering on, server rendering"),
            (f"scrollvr:{key}", "slice scrolling, volume rendering on"),
        ):
            ours_only = name.startswith(("scrollvr", "draglocal"))
            if name.startswith("scrollvr"):
                rows.append(
                    [f"{key}, {what}: frames shown", "= as loaded (rendering already on)", frames_cell(results, name, OURS)]
                )
            elif name.startswith("draglocal"):
                rows.append([f"{key}, {what}: frames drawn", "no such mode", frames_cell(results, name, OURS)])
            else:
                rows.append([f"{key}, {what}: frames shown", *(frames_cell(results, name, v) for v in VIEWERS)])
            if name.startswith("drag"):
                row(f"{key}, {what}: first 3D frame after the drag began", f"{name}:first")
            if ours_only:
                label = f"{key}, {what}: view still updating after the last event"
                rows.append([label, "", cell(results, f"{name}:catchup", OURS, "{:.1f}", " s")])
            else:
                row(f"{key}, {what}: view still updating after the last event", f"{name}:catchup")
            rows.append(
                [
                    f"{key}, {what}: longest wait of a GET every 100 ms (trame-slicer: `/index.html`; "
                    "ours: gateway `/api/health` / the tab's session `/s/ID/index.html`)",
                    cell(results, f"{name}:http0", MEDICAL, "{:.2f}", " s") if not ours_only else "",
                    cell(results, f"{name}:http0", OURS, "{:.2f}", " s") + " / " + cell(results, f"{name}:http1", OURS, "{:.2f}", " s"),
                ]
            )
    for label, measure in (
        ("server memory, idle (empty, no client)", "mem:idle"),
        ("server memory, one client, empty scene", "mem:client"),
        *((f"server memory, one client, {v.key} preloaded", f"mem:loaded:{v.key}") for v in volumes),
        (f"server memory, one client, after uploading {big.key}", f"mem:uploaded:{big.key}"),
    ):
        rows.append([label, *(memory_cell(results, measure, v) for v in VIEWERS)])
    return markdown_table(["measured (median)", "trame-slicer medical-viewer", "slicer-cloud view"], rows)


METHOD = """\
Method. Both viewers run on this machine in the same run, taking turns (the order alternates
each repetition); other work was running on the machine at the same time (load average {load}),
so numbers are noisy: trust large differences only. trame-slicer runs as `python -m
trame_slicer.app.medical_viewer_app --server`; it cannot load a file on the server, so its
preloaded runs use `benchmarks/viewer_medical_launcher.py`, which hands the file to the app's own
upload handler (a private method) before the server starts. slicer-cloud runs as `slicer-cloud
view [FILE] --data DIR --port 0` with its defaults (one spare session process started ahead, with
FILE loaded). Volumes: the built-in CT phantom at {volumes}. Browser: Debian Chromium, headless,
1280x860 viewport, loopback; each viewer in its default layout. "Page served": trame-slicer `GET
/index.html` answers 200; ours `GET /` answers after its redirect to a ready session's page (a
fresh server is then started for the browser, since that request took a session). "Correct" axial
image: at least 5 % of the view brighter than air, and the body's bounding box touches no edge and
spans at least 60 % of the view's width or height (fitted: neither over-zoomed nor tiny), judged
in the page on every frame; "first axial image" is the first with 5 % above air. Frames are the
changes of a view's `img` source (frames actually shown); sizes come from the frame blobs (JPEG).
Scrolling: {scroll_s:.0f} s of wheel events (25/s) over the axial view; 3D: a {drag_s:.0f} s circular
drag (a move every 40 ms) once the volume rendering was drawn (trame-slicer turns it on at load,
ours by its switch). Ours first in local 3D (chosen by itself: this Chromium has WebGL2 through
SwiftShader, the server no GPU), counting the animation frames in which the page drew with WebGL,
then switched to server rendering and dragged again. Before each, the server was idle; during each, a thread makes one GET every
100 ms, until the view has been still and the server idle again ("still updating" is how long
frames kept coming after the last event: queued events being worked through). Memory: RSS of the
server's whole process tree (PSS splits shared pages between the processes using them, unrelated
ones included, so it moves with whatever else runs), once the tree had been quiet for 1.5 s. Repetitions: {reps} cold starts per viewer for the empty server and the
largest volume, {browser_reps} of them with a page opened (first image, memory, upload); the
smaller volume and the interactions once; medians shown. Run time {total:.0f} min."""


# -- main ----------------------------------------------------------------------------------------
def run(plan: Plan, output: Path | None) -> str:
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    from playwright.sync_api import sync_playwright

    began = time.perf_counter()
    load_before = os.getloadavg()[0]
    results = Results()
    with tempfile.TemporaryDirectory(prefix="viewer-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "volumes").mkdir()
        volumes = make_volumes(tmp / "volumes", plan.quick)
        big = volumes[-1]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                for rep in range(plan.reps):
                    order = VIEWERS if rep % 2 == 0 else VIEWERS[::-1]
                    for kind in order:
                        empty_scenario(browser, kind, tmp / "work", big, plan, rep, results)
                    for volume in volumes:
                        if volume.once and rep > 0:
                            continue
                        for kind in order:
                            preloaded_scenario(browser, kind, tmp / "work", volume, plan, rep, results)
            finally:
                browser.close()
    total_min = (time.perf_counter() - began) / 60
    load = f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores"
    body = "\n\n".join(
        [
            "## Web viewer against trame-slicer's medical-viewer (`python -m benchmarks.viewer`)",
            machine_line(),
            build_table(results, volumes, big),
            METHOD.format(
                load=load,
                volumes=" and ".join(v.label for v in volumes),
                scroll_s=plan.scroll_s,
                drag_s=plan.drag_s,
                reps=plan.reps,
                browser_reps=plan.browser_reps,
                total=total_min,
            ),
        ]
    )
    if output is not None:
        write_section("viewer", body, doc=output)
    return body


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.viewer", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny volume, one repetition, short windows: checks that it runs")
    parser.add_argument("--reps", type=int, default=None, help="cold starts and page opens per viewer (default 3)")
    parser.add_argument("--output", type=Path, default=None, help=f"file to write the section to (default {DOC}; --quick: none)")
    args = parser.parse_args(argv)
    plan = Plan(reps=1, browser_reps=1, scroll_s=1.5, drag_s=1.5, quick=True) if args.quick else Plan()
    if args.reps is not None:
        plan.reps = max(1, args.reps)
        plan.browser_reps = min(plan.browser_reps, plan.reps)
    output = args.output if args.output is not None else (None if args.quick else DOC)
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: run ./scripts/bootstrap.sh (it installs Debian's chromium).")
    print(run(plan, output))


if __name__ == "__main__":
    main()

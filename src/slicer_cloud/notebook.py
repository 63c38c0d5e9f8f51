"""Slicer in any Python notebook: no desktop Slicer, no display.

    from slicer_cloud.notebook import show, Viewer, run

    show("ct.nrrd", view="quad", preset="ct-abdomen")      # an inline image
    Viewer("ct.nrrd")                                        # slice slider, orientation, W/L, 3D
    bone = run("threshold", input="ct.nrrd", lower=200, upper=3000)
    stats = run("segment_statistics", segmentation=bone.outputs["output"])
    stats.table                                              # a pandas DataFrame

Images are rendered by Slicer's own libraries (slicer-core) offscreen in the kernel process, the
same code as the viewer and the compute API. ``run`` runs a processing module (the modules of
``slicer-cloud run --list``) on this machine, or on a Dask cluster after
``configure(engine="dask", scheduler=...)``, with a progress bar.

A file is a path (relative to the current folder or to the data folder of ``slicer-cloud
serve``), an item of the compute API (a dict with ``path``), an output of :func:`run`, or a
DICOMweb series ``"dicomweb:SERVER/STUDY_UID/SERIES_UID"`` of a configured server.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slicer_cloud.errors import SlicerCloudError

VIEWS = ("axial", "coronal", "sagittal", "3d", "quad")
SLICE_VIEWS = ("axial", "coronal", "sagittal")
#: LPS axis index of each slice view's normal
_NORMAL_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}

Source = str | os.PathLike | dict


# --- files ---------------------------------------------------------------------------------------
def data_folder() -> Path:
    """The data folder of ``slicer-cloud serve`` (its kernels inherit it), else the current folder."""
    return Path(os.environ.get("SLICER_CLOUD_DATA_DIR") or os.getcwd())


def resolve(source: Source) -> Path:
    """The file a ``show``/``Viewer``/``run`` argument names (a ``dicomweb:SERVER/STUDY/SERIES``
    reference is fetched once into the cache, through the usual checks, and named by its file)."""
    if isinstance(source, str) and source.startswith("dicomweb:"):
        from slicer_cloud.config import default_cache_dir
        from slicer_cloud.dicomweb.compute import series_to_nrrd
        from slicer_cloud.dicomweb.reference import parse_reference

        return series_to_nrrd(parse_reference(source), default_cache_dir() / "dicomweb")
    if isinstance(source, dict):
        if "path" not in source:
            raise SlicerCloudError("An item needs a 'path' (items of the compute API have one).")
        candidates = [data_folder() / source["path"]]
    else:
        path = Path(source).expanduser()
        candidates = [path] if path.is_absolute() else [Path.cwd() / path, data_folder() / path]
    for candidate in candidates:
        if candidate.exists():
            return candidate.resolve()
    raise SlicerCloudError(f"No such file: {candidates[0]}", status=404)


def slice_count(path: Path, orientation: str) -> int:
    """How many slices ``orientation`` has through the image (from its header)."""
    from slicer_cloud.core.images import inspect_image

    info = inspect_image(path, check_data=False)
    normal = _NORMAL_AXIS[orientation]
    axis = max(range(3), key=lambda a: abs(info.direction[normal][a]))
    return info.dimensions[axis]


# --- static images -------------------------------------------------------------------------------
def render_png(
    source: Source,
    view: str = "axial",
    *,
    index: int | None = None,
    window: float | None = None,
    level: float | None = None,
    preset: str | None = None,
    size: int = 512,
) -> bytes:
    """PNG bytes of one view (see :func:`show`)."""
    from slicer_cloud.core import render

    path = resolve(source)
    if view not in VIEWS:
        raise SlicerCloudError(f"view must be one of {', '.join(VIEWS)} (got {view!r}).")
    if view in SLICE_VIEWS:
        return render.render_slice(path, orientation=view, index=index, window=window, level=level, preset=preset, size=size)
    if view == "3d":
        return render.render_volume(path, preset=_volume_preset(preset), size=size)
    half = max(64, size // 2)
    tiles = [render_png(path, v, index=None, window=window, level=level, preset=preset, size=half) for v in SLICE_VIEWS]
    tiles.append(render_png(path, "3d", preset=preset, size=half))
    return _grid(tiles, half)


def _volume_preset(preset: str | None) -> str | None:
    # Window/level presets (ct-bone) name slice displays; 3D presets are Slicer's (CT-Bone).
    from slicer_cloud.core.presets import WINDOW_PRESETS

    return None if preset is None or preset in WINDOW_PRESETS or preset == "auto" else preset


def _grid(tiles: list[bytes], tile: int) -> bytes:
    from PIL import Image

    canvas = Image.new("RGB", (2 * tile, 2 * tile))
    for number, png in enumerate(tiles):
        image = Image.open(io.BytesIO(png)).convert("RGB").resize((tile, tile))
        canvas.paste(image, ((number % 2) * tile, (number // 2) * tile))
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


def show(
    source: Source,
    view: str = "axial",
    *,
    index: int | None = None,
    window: float | None = None,
    level: float | None = None,
    preset: str | None = None,
    size: int = 512,
):
    """An inline image of ``source``: one slice view, the 3D volume rendering, or ``"quad"``
    (axial, coronal, sagittal and 3D). ``index`` picks the slice (default: the middle);
    ``window``/``level`` or ``preset`` (ct-brain, ct-abdomen, ct-lung, ct-bone; for 3D one of
    Slicer's volume rendering presets such as CT-Bone) set the display."""
    from IPython.display import Image

    return Image(data=render_png(source, view, index=index, window=window, level=level, preset=preset, size=size), format="png")


# --- the interactive viewer ----------------------------------------------------------------------
class Viewer:
    """An interactive view of a volume: orientation (or 3D), slice slider, window/level presets
    or values. Works wherever ipywidgets do (JupyterLab, Notebook, Voila); each change renders
    one image in the kernel."""

    def __init__(self, source: Source, *, view: str = "axial", preset: str | None = None, size: int = 448):
        import ipywidgets as widgets

        from slicer_cloud.core.presets import WINDOW_PRESETS

        if view not in VIEWS[:4]:
            raise SlicerCloudError(f"view must be one of {', '.join(VIEWS[:4])} (got {view!r}).")
        self.path = resolve(source)
        self.size = size
        self._counts = {o: slice_count(self.path, o) for o in SLICE_VIEWS}
        self.image = widgets.Image(format="png", layout=widgets.Layout(width=f"{size}px", height=f"{size}px"))
        self.orientation = widgets.ToggleButtons(options=[("Axial", "axial"), ("Coronal", "coronal"), ("Sagittal", "sagittal"), ("3D", "3d")],
                                                 value=view, description="View")
        self.slider = widgets.IntSlider(description="Slice", min=0, max=self._counts.get(view, 1) - 1, continuous_update=False)
        self.slider.value = self.slider.max // 2
        self.preset = widgets.Dropdown(description="W/L", options=["auto", *WINDOW_PRESETS, "custom"], value=preset or "auto")
        self.window = widgets.FloatText(description="Window", value=400.0, layout=widgets.Layout(width="180px"))
        self.level = widgets.FloatText(description="Level", value=40.0, layout=widgets.Layout(width="180px"))
        self.status = widgets.Label()
        for control in (self.orientation, self.slider, self.preset, self.window, self.level):
            control.observe(self._changed, names="value")
        self.widget = widgets.VBox([
            widgets.HBox([self.orientation]),
            widgets.HBox([self.slider, self.preset]),
            widgets.HBox([self.window, self.level]),
            self.image,
            self.status,
        ])  # fmt: skip
        self._lock = threading.Lock()
        self._sync_controls()
        self.refresh()

    def _sync_controls(self) -> None:
        view = self.orientation.value
        self.slider.disabled = view == "3d"
        if view in self._counts:
            self.slider.max = self._counts[view] - 1
        custom = self.preset.value == "custom"
        self.window.disabled = self.level.disabled = not custom

    def _changed(self, change: dict[str, Any]) -> None:
        if change["owner"] is self.orientation and change["new"] in self._counts:
            self._sync_controls()
            self.slider.value = self.slider.max // 2  # observed: renders once below
        self._sync_controls()
        self.refresh()

    def options(self) -> dict[str, Any]:
        """The render options the controls stand for."""
        view = self.orientation.value
        options: dict[str, Any] = {"view": view, "size": self.size}
        if view != "3d":
            options["index"] = min(self.slider.value, self._counts[view] - 1)
            if self.preset.value == "custom":
                options["window"], options["level"] = float(self.window.value), float(self.level.value)
            elif self.preset.value != "auto":
                options["preset"] = self.preset.value
        return options

    def refresh(self) -> None:
        with self._lock:  # one render at a time: the kernel has one renderer
            try:
                started = time.perf_counter()
                self.image.value = render_png(self.path, **self.options())
                self.status.value = f"{self.path.name}: {self.options()['view']} in {time.perf_counter() - started:.2f} s"
            except SlicerCloudError as error:
                self.status.value = f"Cannot show this: {error.message}"

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)


# --- running modules -----------------------------------------------------------------------------
@dataclass
class RunSettings:
    """Where :func:`run` runs modules: ``local`` processes or a Dask cluster."""

    engine: str = field(default_factory=lambda: os.environ.get("SLICER_CLOUD_ENGINE", "local"))
    scheduler: str | None = field(default_factory=lambda: os.environ.get("SLICER_CLOUD_SCHEDULER") or None)
    workers: int | None = None
    out: Path = field(default_factory=lambda: Path("slicer-cloud-results"))
    modules_path: list[Path] = field(default_factory=list)


_settings = RunSettings()
_engines: dict[tuple, Any] = {}


def configure(**options: Any) -> RunSettings:
    """Set where :func:`run` runs: ``engine="local"|"dask"|"slurm"``, ``scheduler="tcp://host:8786"``
    (none: a LocalCluster), ``workers``, ``out`` (the results folder), ``modules_path``."""
    for key, value in options.items():
        if not hasattr(_settings, key):
            raise SlicerCloudError(f"configure() has no option {key!r}; it has: engine, scheduler, workers, out, modules_path.")
        setattr(_settings, key, Path(value) if key == "out" else value)
    return _settings


def close_engines() -> None:
    """Stop the engines :func:`run` started (a Dask LocalCluster, local worker threads)."""
    while _engines:
        _, engine = _engines.popitem()
        engine.close()


def _engine():
    key = (_settings.engine, _settings.scheduler, _settings.workers)
    if key not in _engines:
        from slicer_cloud.compute.jobs.engines import make_engine

        _engines[key] = make_engine(_settings.engine, scheduler=_settings.scheduler,
                                    workers=_settings.workers or (1 if _settings.engine == "local" else None))
    return _engines[key]


@dataclass
class RunResult:
    """What a module run gave: output files by parameter name, return parameters, and the
    statistics table (a pandas DataFrame) when the module writes one."""

    module: str
    state: str
    seconds: float
    outputs: dict[str, Path]
    returned: dict[str, Any]
    log_tail: list[str]
    table: Any = None

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in self.returned.items())
        files = "".join(f"<li>{html.escape(k)}: <code>{html.escape(str(v))}</code></li>" for k, v in self.outputs.items())
        return (f"<b>{html.escape(self.module)}</b> {self.state} in {self.seconds:.1f} s"
                f"<ul>{files}</ul>" + (f"<table>{rows}</table>" if rows else ""))


class _Listener:
    """The engine's listener (called from engine threads): it only records; :func:`run` draws
    the progress bar from the kernel's own thread."""

    def __init__(self) -> None:
        self.fraction = 0.0
        self.comment = "queued"
        self.outcome: Any = None
        self.done = threading.Event()

    def started(self, job_id: str) -> None:
        self.comment = "running"

    def progress(self, job_id: str, progress: float | None, comment: str | None) -> None:
        if progress is not None:
            self.fraction = progress
        if comment:
            self.comment = comment

    def log(self, job_id: str, line: str) -> None:
        pass

    def finished(self, job_id: str, outcome: Any) -> None:
        self.outcome = outcome
        self.done.set()


def run(module: str, *, timeout_s: float = 6 * 3600.0, progress: bool = True, **parameters: Any) -> RunResult:
    """Run a processing module and wait for it, with a progress bar.

    File inputs take paths, API items or earlier outputs; file outputs may be given a file name
    (they land in the results folder, see :func:`configure`), or get one from the module and the
    input. Raises :class:`~slicer_cloud.errors.SlicerCloudError` when the job fails, with its log.
    """
    from slicer_cloud.compute.jobs.manager import stem
    from slicer_cloud.compute.jobs.spec import JobSpec, OutputSpec
    from slicer_cloud.compute.modules.protocol import parse_return_text
    from slicer_cloud.compute.modules.registry import Registry

    entry = Registry(_settings.modules_path).get(module)
    descriptor = entry.descriptor
    files: dict[str, Any] = {}
    plain: dict[str, Any] = {}
    first_input: Path | None = None
    for name, value in parameters.items():
        parameter = next((p for p in descriptor.parameters if p.name == name), None)
        if parameter is not None and parameter.is_file and parameter.channel == "input" and value is not None:
            path = resolve(value) if parameter.type != "directory" else Path(value).resolve()
            files[name] = str(path)
            first_input = first_input or path
        else:
            plain[name] = value
    values = descriptor.validate({**plain, **{k: "input" for k in files}})
    for name in files:
        values.pop(name, None)
    out = _settings.out.resolve()
    job_id = f"nb-{secrets.token_hex(6)}"
    workdir = out / ".work" / job_id
    outputs: list[OutputSpec] = []
    final: dict[str, Path] = {}
    for parameter in descriptor.file_outputs:
        name = values.pop(parameter.name, None) or f"{stem(first_input.name) if first_input else 'output'}-{module}{parameter.default_extension()}"
        if Path(str(name)).name != str(name):
            raise SlicerCloudError(f"Parameter {parameter.name!r}: a file name, not a path (configure(out=...) sets the folder).")
        staged = workdir / parameter.name / str(name)
        staged.parent.mkdir(parents=True, exist_ok=True)
        files[parameter.name] = str(staged)
        outputs.append(OutputSpec(parameter.name, str(staged), "file"))
        final[parameter.name] = out / str(name)
    return_file = workdir / "return-parameters.txt" if descriptor.return_parameters else None
    workdir.mkdir(parents=True, exist_ok=True)
    argv = entry.command + descriptor.command_line(values, files, return_file)
    spec = JobSpec(job_id=job_id, module=module, argv=argv, workdir=str(workdir), outputs=outputs,
                   return_file=str(return_file) if return_file else None, wall_time_s=timeout_s, describe_outputs=False)
    state = _Listener()
    engine = _engine()
    bar = _ProgressBar(f"{module}") if progress else None
    engine.submit(spec, state)
    try:
        deadline = time.monotonic() + timeout_s + 60
        while not state.done.wait(0.2):
            if bar:
                bar.update(state.fraction, state.comment)
            if time.monotonic() > deadline:
                engine.cancel(job_id)
                raise SlicerCloudError(f"{module} did not finish within {timeout_s:g} s.", status=504)
    except KeyboardInterrupt:
        engine.cancel(job_id)
        state.done.wait(30)
        raise
    outcome = state.outcome
    if bar:
        bar.finish(outcome.state)
    try:
        if outcome.state != "succeeded":
            tail = "\n".join(outcome.log_tail[-15:])
            raise SlicerCloudError(f"{module} {outcome.state}: {outcome.error or 'no reason given'}" + (f"\n{tail}" if tail else ""), status=422)
        returned = parse_return_text(outcome.return_text or "", descriptor)
        for output in outputs:
            os.replace(output.path, final[output.parameter])  # complete files only: the job has ended
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = RunResult(module, outcome.state, outcome.seconds, final, returned, list(outcome.log_tail))
    tables = [path for path in final.values() if path.suffix.lower() == ".csv"]
    if tables:
        import pandas

        result.table = pandas.read_csv(tables[0])
    return result


class _ProgressBar:
    def __init__(self, title: str):
        try:
            import ipywidgets as widgets
            from IPython.display import display

            self._bar = widgets.FloatProgress(min=0.0, max=1.0, description=title)
            self._label = widgets.Label("queued")
            display(widgets.HBox([self._bar, self._label]))
        except ImportError:  # pragma: no cover - ipywidgets is a dependency
            self._bar = None

    def update(self, value: float, comment: str) -> None:
        if self._bar is not None:
            self._bar.value = max(0.0, min(1.0, value))
            self._label.value = comment or "running"

    def finish(self, state: str) -> None:
        if self._bar is not None:
            self._bar.value = 1.0
            self._bar.bar_style = "success" if state == "succeeded" else "danger"
            self._label.value = state


def batch(module: str, inputs: list[str], **parameters: Any):
    """Run ``module`` over many inputs (files, folders, globs) on the configured engine, with a
    progress bar; one row per case (its state, outputs and return parameters) as a DataFrame."""
    import pandas

    from slicer_cloud.compute.batch import run_batch

    out = _settings.out.resolve()
    run_batch(module, [str(i) for i in inputs], sets=[f"{k}={v}" for k, v in parameters.items()], out=out,
              engine=_settings.engine, scheduler=_settings.scheduler, workers=_settings.workers,
              modules_path=_settings.modules_path)
    return pandas.read_csv(out / "summary.csv")


__all__ = ["Viewer", "RunResult", "batch", "close_engines", "configure", "resolve", "run", "show"]

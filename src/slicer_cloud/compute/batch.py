"""``slicer-cloud run``: one module over many inputs, on the local pool, a Dask cluster or SLURM.

Each input is one case. A case that fails is reported with its reason and the batch goes on;
a table sums up at the end and ``summary.csv`` in the output folder keeps every case's return
parameters (for a cohort: one row per scan). Outputs reach the output folder only when their
case succeeded.
"""

from __future__ import annotations

import csv
import glob
import io
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slicer_cloud.compute.jobs.engine import Engine
from slicer_cloud.compute.jobs.engines import make_engine
from slicer_cloud.compute.jobs.manager import stem
from slicer_cloud.compute.jobs.spec import JobOutcome, JobSpec, OutputSpec
from slicer_cloud.compute.modules.descriptor import ModuleDescriptor, Parameter
from slicer_cloud.compute.modules.protocol import format_return_value, parse_return_text
from slicer_cloud.compute.modules.registry import ModuleEntry, Registry
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.atomic import atomic_output

INPUT_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".stl", ".obj", ".vtp", ".vtk", ".ply", ".csv")
_GLOB_CHARS = set("*?[")


@dataclass
class Case:
    number: int
    source: str
    input_path: Path | None
    state: str = "queued"
    progress: float = 0.0
    error: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    returned: dict[str, Any] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)


def expand_inputs(inputs: list[str], *, fetch_dir: Path | None = None, reasons: dict[str, str] | None = None) -> list[tuple[str, Path | None]]:
    """Files, folders (their image/model/table files, sorted), globs and DICOMweb series
    (``dicomweb:...``, fetched as NRRD into ``fetch_dir``); a name that matches nothing stays in
    the list as a case that will fail with the reason (in ``reasons`` when there is one)."""
    found: list[tuple[str, Path | None]] = []
    for given in inputs:
        if given.startswith("dicomweb:"):
            from slicer_cloud.dicomweb.batch import expand_dicomweb

            found += expand_dicomweb(given, fetch_dir or Path.cwd(), reasons if reasons is not None else {})
            continue
        if _GLOB_CHARS & set(given):
            matches = sorted(glob.glob(given, recursive=True))
            if not matches:
                found.append((given, None))
            found += [(m, Path(m)) for m in matches if Path(m).is_file()]
            continue
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(INPUT_SUFFIXES))
            if not files:
                found.append((given, None))
            found += [(str(p), p) for p in files]
        else:
            found.append((given, path if path.is_file() else None))
    return found


def main_input(descriptor: ModuleDescriptor) -> Parameter:
    """The parameter each case's file goes to: the first positional file input."""
    candidates = [p for p in descriptor.inputs if p.is_file and p.type != "directory"]
    candidates.sort(key=lambda p: (p.index is None, p.index or 0))
    if not candidates:
        raise SlicerCloudError(f"Module {descriptor.name!r} takes no input file, so it cannot run over inputs.", status=422)
    return candidates[0]


def parse_sets(sets: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for text in sets:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise SlicerCloudError(f"--set takes NAME=VALUE (got {text!r}).", status=422)
        values[name.strip()] = value
    return values


class _Listener:
    def __init__(self, cases: dict[str, Case]):
        self.cases = cases

    def started(self, job_id: str) -> None:
        self.cases[job_id].state = "running"

    def progress(self, job_id: str, progress: float | None, comment: str | None) -> None:
        if progress is not None:
            self.cases[job_id].progress = progress

    def log(self, job_id: str, line: str) -> None:
        pass

    def finished(self, job_id: str, outcome: JobOutcome) -> None:
        case = self.cases[job_id]
        case.outcome = outcome  # type: ignore[attr-defined]
        case.done.set()


def plan(entry: ModuleEntry, sets: dict[str, str]) -> tuple[Parameter, dict[str, Any], dict[str, str]]:
    """Check the --set values against the descriptor once, before any case runs."""
    descriptor = entry.descriptor
    target = main_input(descriptor)
    if target.name in sets:
        raise SlicerCloudError(f"{target.name!r} comes from the inputs; do not --set it.", status=422)
    file_inputs = {p.name for p in descriptor.inputs if p.is_file}
    file_values = {name: value for name, value in sets.items() if name in file_inputs}
    values = descriptor.validate({**{k: v for k, v in sets.items() if k not in file_values}, target.name: "input"})
    values.pop(target.name, None)
    for parameter in descriptor.inputs:
        if parameter.is_file and parameter.name in file_values and not Path(file_values[parameter.name]).exists():
            raise SlicerCloudError(f"--set {parameter.name}: no such file {file_values[parameter.name]}.", status=422)
    for parameter in descriptor.parameters:
        if parameter.required and parameter.name != target.name and parameter.name not in sets:
            raise SlicerCloudError(f"Parameter {parameter.name!r} is required: give --set {parameter.name}=...", status=422)
    return target, values, file_values


def run_batch(
    module: str,
    inputs: list[str],
    *,
    sets: list[str],
    out: Path,
    engine: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    modules_path: list[Path] | None = None,
    wall_time_s: float = 6 * 3600.0,
    quiet: bool = False,
    to_pacs: bool = False,
) -> list[Case]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, quiet=quiet)
    registry = Registry(modules_path or [])
    entry = registry.get(module)
    descriptor = entry.descriptor
    target, values, file_values = plan(entry, parse_sets(sets))
    out.mkdir(parents=True, exist_ok=True)
    work_root = out / ".slicer-cloud-work"
    reasons: dict[str, str] = {}
    found = expand_inputs(inputs, fetch_dir=work_root / "dicomweb", reasons=reasons)
    if not found:
        raise SlicerCloudError("No inputs: give files, folders or globs.", status=422)
    runner: Engine = make_engine(engine, scheduler=scheduler, workers=workers)
    cases: dict[str, Case] = {}
    listener = _Listener(cases)
    try:
        for number, (source, path) in enumerate(found, start=1):
            job_id = f"case-{number:05d}"
            case = Case(number, source, path)
            cases[job_id] = case
            if path is None:
                case.state, case.error = "failed", reasons.get(source) or f"No such file or no input file matches: {source}"
                case.done.set()
                continue
            spec = _spec(entry, job_id, target, path, values, file_values, work_root / job_id, out, wall_time_s)
            runner.submit(spec, listener)
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=False) as bar:
            task = bar.add_task(f"{module}", total=len(cases))
            while not all(c.done.is_set() for c in cases.values()):
                finished = sum(c.done.is_set() for c in cases.values())
                running = sum(c.progress for c in cases.values() if not c.done.is_set())
                bar.update(task, completed=finished + running)
                time.sleep(0.1)
            bar.update(task, completed=len(cases))
    except KeyboardInterrupt:
        for job_id, case in cases.items():
            if not case.done.is_set():
                runner.cancel(job_id)
        raise
    finally:
        runner.close()
    for job_id, case in cases.items():
        outcome: JobOutcome | None = getattr(case, "outcome", None)
        if outcome is None:
            continue
        case.seconds = outcome.seconds
        case.notes = list(outcome.notes)
        case.state = outcome.state
        case.error = outcome.error
        if outcome.state == "succeeded":
            case.returned = parse_return_text(outcome.return_text or "", descriptor)
            for output in _outputs_of(entry, job_id, work_root, target, case.input_path, values, out):
                final = out / Path(output.path).name
                os.replace(output.path, final)
                case.outputs.append(final.name)
            if to_pacs and case.source.startswith("dicomweb:"):
                from slicer_cloud.dicomweb.batch import export_case_outputs

                export_case_outputs(case, entry, out)
    shutil.rmtree(work_root, ignore_errors=True)
    _write_summary(out / "summary.csv", list(cases.values()), descriptor)
    _print_table(console, module, list(cases.values()), descriptor)
    return list(cases.values())


def _output_name(parameter: Parameter, values: dict[str, Any], module: str, input_path: Path) -> str:
    pattern = values.get(parameter.name)
    if pattern:
        name = str(pattern).replace("{stem}", stem(input_path.name))
    else:
        name = f"{stem(input_path.name)}-{module}{parameter.default_extension()}"
    if Path(name).name != name:
        raise SlicerCloudError(f"--set {parameter.name}: a file name, not a path (use --out for the folder).", status=422)
    return name


def _outputs_of(entry: ModuleEntry, job_id: str, work_root: Path, target: Parameter, input_path: Path | None,
                values: dict[str, Any], out: Path) -> list[OutputSpec]:
    assert input_path is not None
    specs = []
    for parameter in entry.descriptor.file_outputs:
        name = _output_name(parameter, values, entry.name, input_path)
        specs.append(OutputSpec(parameter.name, str(work_root / job_id / parameter.name / name), "file"))
    return specs


def _spec(entry: ModuleEntry, job_id: str, target: Parameter, input_path: Path, values: dict[str, Any],
          file_values: dict[str, str], workdir: Path, out: Path, wall_time_s: float) -> JobSpec:
    files: dict[str, Any] = {name: str(Path(value).resolve()) for name, value in file_values.items()}
    files[target.name] = str(input_path.resolve())
    outputs = _outputs_of(entry, job_id, workdir.parent, target, input_path, values, out)
    for output in outputs:
        Path(output.path).parent.mkdir(parents=True, exist_ok=True)
        files[output.parameter] = output.path
    plain = {k: v for k, v in values.items() if k not in files}
    return_file = workdir / "return-parameters.txt" if entry.descriptor.return_parameters else None
    argv = entry.command + entry.descriptor.command_line(plain, files, return_file)
    return JobSpec(job_id=job_id, module=entry.name, argv=argv, workdir=str(workdir), outputs=outputs,
                   return_file=str(return_file) if return_file else None, wall_time_s=wall_time_s, describe_outputs=False)


def _write_summary(path: Path, cases: list[Case], descriptor: ModuleDescriptor) -> None:
    names = [p.name for p in descriptor.return_parameters]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["input", "state", "seconds", "outputs", "error", "notes", *names])
    for case in cases:
        writer.writerow([case.source, case.state, f"{case.seconds:.2f}", ";".join(case.outputs), case.error or "", " ".join(case.notes),
                         *[format_return_value(case.returned[n]).replace(",", " ") if n in case.returned else "" for n in names]])
    with atomic_output(path) as tmp:
        tmp.write_text(text.getvalue())


def _print_table(console, module: str, cases: list[Case], descriptor: ModuleDescriptor) -> None:
    from rich.table import Table

    table = Table(title=f"{module}: {sum(c.state == 'succeeded' for c in cases)} of {len(cases)} succeeded")
    for column in ("#", "input", "state", "s", "outputs", "results / error"):
        table.add_column(column, overflow="fold")
    for case in cases:
        if case.state == "succeeded":
            detail = " ".join([", ".join(f"{k}={format_return_value(v)}" for k, v in case.returned.items()), *case.notes])
        else:
            detail = case.error or ""
        style = "green" if case.state == "succeeded" else "red"
        table.add_row(str(case.number), case.source, f"[{style}]{case.state}[/{style}]", f"{case.seconds:.1f}",
                      ", ".join(case.outputs), detail[:300])
    console.print(table)

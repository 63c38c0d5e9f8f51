"""What every built-in module shares: its command line, built from its own XML descriptor.

A built-in module is a small program (``python -m slicer_cloud.compute.modules.builtin.NAME``)
that answers ``--xml`` like any Slicer CLI module, so desktop Slicer can load it too. The same
function can also be called in-process (:func:`call`), which the benchmarks compare against.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slicer_cloud.compute.modules.descriptor import ModuleDescriptor, parse_descriptor
from slicer_cloud.compute.modules.protocol import format_progress, format_return_value
from slicer_cloud.errors import SlicerCloudError
from slicer_cloud.store.atomic import atomic_output

Run = Callable[[dict[str, Any], "Progress"], "dict[str, Any] | None"]


class Progress:
    """Reports progress the way Slicer reads it: ``<filter-progress>`` lines on stdout."""

    def __init__(self, name: str, *, quiet: bool = False):
        self.name = name
        self.quiet = quiet

    def start(self, comment: str) -> None:
        self._say(f"<filter-start><filter-name>{self.name}</filter-name><filter-comment>{comment}</filter-comment></filter-start>")

    def __call__(self, fraction: float, comment: str | None = None) -> None:
        if comment:
            self._say(f"<filter-comment>{comment}</filter-comment>")
        self._say(format_progress(fraction))

    def end(self) -> None:
        self._say(f"<filter-end><filter-name>{self.name}</filter-name></filter-end>")

    def _say(self, line: str) -> None:
        if not self.quiet:
            print(line, flush=True)


def descriptor_of(name: str, xml: str) -> ModuleDescriptor:
    return parse_descriptor(xml, name)


def build_parser(descriptor: ModuleDescriptor) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=descriptor.name, description=descriptor.description)
    parser.add_argument("--xml", action="store_true", help="print the Execution Model descriptor and exit")
    parser.add_argument("--returnparameterfile", help="file to write output values to (name = value)")
    parser.add_argument("--processinformationaddress", help=argparse.SUPPRESS)
    for parameter in sorted(descriptor.parameters, key=lambda p: (p.index is None, p.index or 0)):
        if parameter.is_return:
            continue
        if parameter.index is not None:
            parser.add_argument(parameter.name, nargs="*" if parameter.multiple else "?", help=parameter.description)
            continue
        options = [o for o in (parameter.flag, parameter.longflag) if o]
        if parameter.type == "boolean":
            parser.add_argument(*options, dest=parameter.name, action="store_true", help=parameter.description)
        elif parameter.multiple:
            parser.add_argument(*options, dest=parameter.name, action="append", help=parameter.description)
        else:
            parser.add_argument(*options, dest=parameter.name, help=parameter.description)
    return parser


def parse_arguments(descriptor: ModuleDescriptor, argv: list[str]) -> tuple[dict[str, Any], str | None]:
    namespace = build_parser(descriptor).parse_args(argv)
    raw = {p.name: getattr(namespace, p.name, None) for p in descriptor.parameters if not p.is_return}
    raw = {name: value for name, value in raw.items() if value is not None and value != []}
    values = descriptor.validate(raw)
    for parameter in descriptor.parameters:  # defaults, as Slicer fills them in
        if parameter.name not in values and parameter.default is not None and not parameter.is_return:
            values[parameter.name] = parameter.default
    return values, namespace.returnparameterfile


def write_return_parameters(path: str | Path, values: dict[str, Any]) -> None:
    with atomic_output(Path(path)) as tmp:
        tmp.write_text("".join(f"{name} = {format_return_value(value)}\n" for name, value in values.items()))


def main(name: str, xml: str, run: Run, argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--xml" in argv:
        sys.stdout.write(xml.strip() + "\n")
        return 0
    descriptor = descriptor_of(name, xml)
    try:
        values, return_file = parse_arguments(descriptor, argv)
        for parameter in descriptor.file_outputs:
            if parameter.index is not None and parameter.name not in values:
                raise SlicerCloudError(f"Parameter {parameter.name!r} (an output file) is required.", status=422)
        progress = Progress(descriptor.title)
        progress.start(f"{descriptor.title} started")
        results = run(values, progress) or {}
        progress(1.0)
        progress.end()
        if return_file:
            write_return_parameters(return_file, results)
        else:
            for key, value in results.items():
                print(f"{key} = {format_return_value(value)}")
        return 0
    except SlicerCloudError as error:
        print(f"error: {error.message}", file=sys.stderr, flush=True)
        return 1


def call(name: str, xml: str, run: Run, **parameters: Any) -> dict[str, Any]:
    """Run a built-in module in this process (no subprocess, no progress lines)."""
    descriptor = descriptor_of(name, xml)
    values = descriptor.validate({k: str(v) if isinstance(v, Path) else v for k, v in parameters.items()})
    for parameter in descriptor.parameters:
        if parameter.name not in values and parameter.default is not None and not parameter.is_return:
            values[parameter.name] = parameter.default
    return run(values, Progress(name, quiet=True)) or {}


def run_module(module_name: str, xml: str, run: Run) -> None:
    """The ``if __name__ == '__main__'`` of every built-in module."""
    raise SystemExit(main(module_name, xml, run))

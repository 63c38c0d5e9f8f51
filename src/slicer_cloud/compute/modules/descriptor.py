"""Slicer Execution Model descriptors: the XML a CLI module prints for ``--xml``.

One descriptor is the single source of truth for a module: the REST parameter schema
(:meth:`Parameter.to_json`), the validation of a request (:meth:`ModuleDescriptor.validate`) and
the command line (:meth:`ModuleDescriptor.command_line`, an argument list, never a shell string).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slicer_cloud.errors import SlicerCloudError

SCALAR_TYPES = ("boolean", "integer", "float", "double", "string")
VECTOR_TYPES = tuple(f"{t}-vector" for t in ("integer", "float", "double", "string"))
ENUM_TYPES = tuple(f"{t}-enumeration" for t in ("integer", "float", "double", "string"))
GEOMETRIC_TYPES = ("point", "region")
#: parameters whose value is a file (or folder): inputs name items, outputs name files.
FILE_TYPES = ("image", "file", "directory", "geometry", "table", "transform", "measurement", "pointfile")
PARAMETER_TYPES = SCALAR_TYPES + VECTOR_TYPES + ENUM_TYPES + GEOMETRIC_TYPES + FILE_TYPES

#: the file name made for an output when the request gives none.
DEFAULT_EXTENSIONS = {
    "image": ".nrrd", "geometry": ".vtp", "table": ".csv", "measurement": ".csv", "transform": ".tfm",
    "file": ".txt", "pointfile": ".fcsv", "directory": "",
}
_MAX_STRING = 10_000


def _text(element: ET.Element | None, tag: str, default: str = "") -> str:
    child = element.find(tag) if element is not None else None
    return (child.text or "").strip() if child is not None and child.text else default


def _number_type(ptype: str) -> str:
    return ptype.split("-")[0]


@dataclass
class Parameter:
    name: str
    type: str
    channel: str = "input"
    label: str = ""
    description: str = ""
    default: Any = None
    constraints: dict[str, float] = field(default_factory=dict)
    elements: list[str] = field(default_factory=list)
    flag: str | None = None
    longflag: str | None = None
    index: int | None = None
    multiple: bool = False
    hidden: bool = False
    subtype: str | None = None
    coordinate_system: str | None = None
    file_extensions: list[str] = field(default_factory=list)
    group: str = ""

    @property
    def is_file(self) -> bool:
        return self.type in FILE_TYPES

    @property
    def is_return(self) -> bool:
        """An output that is a value, not a file: it comes back through the return file."""
        return self.channel == "output" and not self.is_file

    @property
    def required(self) -> bool:
        """Positional inputs must be given (a module cannot run without them)."""
        return self.channel == "input" and self.index is not None and self.default is None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "type": self.type, "channel": self.channel, "label": self.label,
            "description": self.description, "default": self.default, "constraints": self.constraints or None,
            "elements": self.elements or None, "flag": self.flag, "longflag": self.longflag, "index": self.index,
            "multiple": self.multiple, "required": self.required, "subtype": self.subtype,
            "coordinate_system": self.coordinate_system, "file_extensions": self.file_extensions or None,
            "group": self.group,
        }

    def default_extension(self) -> str:
        return self.file_extensions[0] if self.file_extensions else DEFAULT_EXTENSIONS.get(self.type, "")

    # -- converting one value ----------------------------------------------------------------
    def _fail(self, rule: str, value: Any) -> SlicerCloudError:
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return SlicerCloudError(f"Parameter {self.name!r}: {rule} (got {shown}).", status=422)

    def _number(self, kind: str, value: Any) -> int | float:
        if isinstance(value, bool):
            raise self._fail(f"expects {'an integer' if kind == 'integer' else 'a number'}", value)
        if kind == "integer":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, str):
                try:
                    value = int(value.strip())
                except ValueError:
                    raise self._fail("expects an integer", value) from None
            if not isinstance(value, int):
                raise self._fail("expects an integer", value)
        else:
            if isinstance(value, str):
                try:
                    value = float(value.strip())
                except ValueError:
                    raise self._fail("expects a number", value) from None
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise self._fail("expects a finite number", value)
            value = float(value)
        low, high = self.constraints.get("minimum"), self.constraints.get("maximum")
        if low is not None and value < low:
            raise self._fail(f"must be at least {low:g}", value)
        if high is not None and value > high:
            raise self._fail(f"must be at most {high:g}", value)
        return value

    def _list(self, value: Any) -> list[Any]:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip() != ""]
        if isinstance(value, (list, tuple)):
            return list(value)
        raise self._fail("expects a list (or comma-separated text)", value)

    def convert(self, value: Any) -> Any:
        """A request's value, checked against this parameter's type and constraints."""
        ptype = self.type
        if ptype == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.strip().lower() in ("true", "1", "yes")
            raise self._fail("expects true or false", value)
        if ptype in ("integer", "float", "double"):
            return self._number(ptype, value)
        if ptype == "string":
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise self._fail("expects text", value)
            text = str(value)
            if "\x00" in text or len(text) > _MAX_STRING:
                raise self._fail("expects text without NUL characters, at most 10000 characters", value)
            return text
        if ptype in VECTOR_TYPES:
            kind = _number_type(ptype)
            items = self._list(value)
            if kind == "string":
                return [str(item) for item in items]
            return [self._number(kind, item) for item in items]
        if ptype in ENUM_TYPES:
            kind = _number_type(ptype)
            converted = str(value) if kind == "string" else self._number(kind, value)
            allowed = self.elements if kind == "string" else [self._number(kind, e) for e in self.elements]
            if converted not in allowed:
                raise self._fail(f"must be one of {', '.join(self.elements)}", value)
            return converted
        if ptype == "point":
            points = value if self.multiple else [value]
            if isinstance(value, str):
                points = [p for p in value.split(";") if p.strip()]
            if not isinstance(points, list) or (self.multiple and not all(isinstance(p, (list, tuple, str)) for p in points)):
                raise self._fail("expects a list of [x, y, z] points" if self.multiple else "expects [x, y, z]", value)
            converted = []
            for point in points:
                coords = [self._number("float", c) for c in self._list(point)]
                if len(coords) != 3:
                    raise self._fail("expects points of 3 coordinates [x, y, z]", value)
                converted.append(coords)
            return converted if self.multiple else converted[0]
        if ptype == "region":
            coords = [self._number("float", c) for c in self._list(value)]
            if len(coords) != 6 or any(r < 0 for r in coords[3:]):
                raise self._fail("expects [center x, y, z, radius x, y, z] with radii >= 0", value)
            return coords
        if self.is_file:
            values = value if (self.multiple and isinstance(value, list)) else [value]
            for item in values:
                if not isinstance(item, str) or not item or "\x00" in item:
                    what = "an item id" if self.channel == "input" and ptype != "directory" else "a name"
                    raise self._fail(f"expects {what}", value)
            return values if self.multiple else values[0]
        raise self._fail(f"has an unsupported type {ptype}", value)  # pragma: no cover

    # -- formatting for the command line -------------------------------------------------------
    def format(self, value: Any) -> list[str]:
        """The value as command-line words (without the flag)."""
        if self.type in VECTOR_TYPES or self.type == "region":
            return [",".join(_fmt(v) for v in value)]
        if self.type == "point":
            points = value if self.multiple else [value]
            return [",".join(_fmt(c) for c in point) for point in points]
        if isinstance(value, list):
            return [_fmt(v) for v in value]
        return [_fmt(value)]


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass
class ModuleDescriptor:
    name: str
    title: str
    category: str = ""
    description: str = ""
    version: str = ""
    contributor: str = ""
    documentation_url: str = ""
    license: str = ""
    acknowledgements: str = ""
    parameters: list[Parameter] = field(default_factory=list)
    xml: str = ""

    def parameter(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise SlicerCloudError(f"Module {self.name!r} has no parameter {name!r}.", status=422)

    @property
    def inputs(self) -> list[Parameter]:
        return [p for p in self.parameters if p.channel == "input"]

    @property
    def file_outputs(self) -> list[Parameter]:
        return [p for p in self.parameters if p.channel == "output" and p.is_file]

    @property
    def return_parameters(self) -> list[Parameter]:
        return [p for p in self.parameters if p.is_return]

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "category": self.category, "description": self.description}

    def to_json(self) -> dict[str, Any]:
        data = self.summary()
        data.update(version=self.version, contributor=self.contributor, documentation_url=self.documentation_url,
                    license=self.license, parameters=[p.to_json() for p in self.parameters])
        return data

    def validate(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Check a request's parameters; the answer holds every given value, converted.

        Raises a 422 :class:`SlicerCloudError` naming the parameter and the rule it breaks.
        """
        if not isinstance(raw, dict):
            raise SlicerCloudError("'parameters' must be an object of name: value.", status=422)
        known = {p.name: p for p in self.parameters}
        values: dict[str, Any] = {}
        for name, value in raw.items():
            parameter = known.get(name)
            if parameter is None:
                names = ", ".join(p.name for p in self.parameters if not p.is_return)
                raise SlicerCloudError(f"Module {self.name!r} has no parameter {name!r}; it has: {names}.", status=422)
            if parameter.is_return:
                raise SlicerCloudError(f"Parameter {name!r} is an output value of {self.name!r}; it cannot be set.", status=422)
            if value is None:
                continue
            values[name] = parameter.convert(value)
        for parameter in self.parameters:
            if parameter.required and parameter.name not in values:
                raise SlicerCloudError(f"Parameter {parameter.name!r} is required ({parameter.label or parameter.type}).", status=422)
        return values

    def command_line(self, values: dict[str, Any], files: dict[str, str | list[str]], return_file: Path | None = None) -> list[str]:
        """The arguments after the executable: flags first, then positionals in index order.

        ``values`` come from :meth:`validate`; ``files`` maps each file parameter (inputs and
        outputs) to its path(s). Defaults are passed too, as Slicer does.
        """
        flagged: list[str] = []
        positional: list[tuple[int, list[str]]] = []
        for parameter in self.parameters:
            if parameter.is_return:
                continue
            if parameter.is_file:
                value = files.get(parameter.name)
            else:
                value = values.get(parameter.name, parameter.default)
            if value is None or (isinstance(value, list) and not value and parameter.is_file):
                continue
            if parameter.index is not None:
                positional.append((parameter.index, parameter.format(value)))
                continue
            option = parameter.longflag or parameter.flag
            if option is None:
                continue
            if parameter.type == "boolean":
                if value:
                    flagged.append(option)
                continue
            words = parameter.format(value)
            repeat = parameter.multiple or (parameter.type == "point" and parameter.multiple)
            if repeat:
                for word in words:
                    flagged += [option, word]
            else:
                flagged += [option, words[0]] if len(words) == 1 else [option, ",".join(words)]
        args = list(flagged)
        for _, words in sorted(positional, key=lambda item: item[0]):
            args += words
        if return_file is not None and self.return_parameters:
            args += ["--returnparameterfile", str(return_file)]
        return args


# --- parsing ---------------------------------------------------------------------------------
def _flag(text: str, dashes: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    return text if text.startswith("-") else dashes + text


def _typed_default(parameter: Parameter, text: str) -> Any:
    if text == "":
        return None
    if parameter.is_file:
        return text
    try:
        return parameter.convert(text)
    except SlicerCloudError:
        # A default outside its own constraints: keep the text, Slicer would too.
        return text


def parse_descriptor(xml_text: str | bytes, name: str) -> ModuleDescriptor:
    """Parse Execution Model XML. ``name`` is the module's name (its executable's name)."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as error:
        raise SlicerCloudError(f"Module {name!r}: its --xml output is not valid XML ({error}).", status=500) from error
    if root.tag != "executable":
        raise SlicerCloudError(f"Module {name!r}: the XML root is <{root.tag}>, not <executable>.", status=500)
    descriptor = ModuleDescriptor(
        name=name,
        title=_text(root, "title", name),
        category=_text(root, "category"),
        description=_text(root, "description"),
        version=_text(root, "version"),
        contributor=_text(root, "contributor"),
        documentation_url=_text(root, "documentation-url"),
        license=_text(root, "license"),
        acknowledgements=_text(root, "acknowledgements"),
        xml=xml_text.decode() if isinstance(xml_text, bytes) else xml_text,
    )
    seen: set[str] = set()
    for group in root.findall("parameters"):
        group_label = _text(group, "label")
        for element in group:
            if element.tag in ("label", "description"):
                continue
            if element.tag not in PARAMETER_TYPES:
                raise SlicerCloudError(f"Module {name!r}: unknown parameter type <{element.tag}>.", status=500)
            pname = _text(element, "name")
            if not pname or pname in seen:
                raise SlicerCloudError(f"Module {name!r}: a <{element.tag}> has no <name> or a repeated one.", status=500)
            seen.add(pname)
            index_text = _text(element, "index")
            constraints: dict[str, float] = {}
            limits = element.find("constraints")
            for key in ("minimum", "maximum", "step"):
                text = _text(limits, key)
                if text:
                    constraints[key] = float(text)
            extensions = element.get("fileExtensions", "")
            parameter = Parameter(
                name=pname,
                type=element.tag,
                channel=_text(element, "channel", "input").lower(),
                label=_text(element, "label", pname),
                description=_text(element, "description"),
                constraints=constraints,
                elements=[(e.text or "").strip() for e in element.findall("element")],
                flag=_flag(_text(element, "flag"), "-"),
                longflag=_flag(_text(element, "longflag"), "--"),
                index=int(index_text) if index_text else None,
                multiple=element.get("multiple", "false").lower() == "true",
                hidden=element.get("hidden", "false").lower() == "true",
                subtype=element.get("type"),
                coordinate_system=element.get("coordinateSystem"),
                file_extensions=[e.strip() for e in extensions.split(",") if e.strip()],
                group=group_label,
            )
            if parameter.channel not in ("input", "output"):
                raise SlicerCloudError(f"Module {name!r}: parameter {pname!r} has channel {parameter.channel!r}.", status=500)
            if parameter.index is None and parameter.flag is None and parameter.longflag is None and not parameter.is_return:
                raise SlicerCloudError(f"Module {name!r}: parameter {pname!r} has no flag, longflag or index.", status=500)
            parameter.default = _typed_default(parameter, _text(element, "default"))
            descriptor.parameters.append(parameter)
    return descriptor

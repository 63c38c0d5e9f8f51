"""The Execution Model parser: every parameter type, validation and the command line."""

from __future__ import annotations

import pytest

from slicer_cloud.compute.modules import builtin
from slicer_cloud.compute.modules.descriptor import parse_descriptor
from slicer_cloud.compute.modules.protocol import parse_progress, parse_return_text
from slicer_cloud.errors import SlicerCloudError

RICH = """<?xml version="1.0" encoding="utf-8"?>
<executable>
  <category>Testing</category>
  <title>Everything</title>
  <description>All parameter types.</description>
  <version>2.1</version>
  <parameters advanced="false">
    <label>Scalars</label>
    <boolean><name>verbose</name><flag>v</flag><longflag>verbose</longflag><default>false</default></boolean>
    <integer><name>iterations</name><longflag>--iterations</longflag><default>5</default>
      <constraints><minimum>1</minimum><maximum>10</maximum><step>1</step></constraints></integer>
    <float><name>ratio</name><flag>-r</flag><default>0.5</default></float>
    <double><name>scale</name><longflag>--scale</longflag></double>
    <string><name>note</name><longflag>--note</longflag></string>
    <integer-vector><name>radius</name><longflag>--radius</longflag><default>1,2,3</default></integer-vector>
    <double-vector><name>spacing</name><longflag>--spacing</longflag></double-vector>
    <string-vector><name>tags</name><longflag>--tags</longflag></string-vector>
    <string-enumeration><name>method</name><longflag>--method</longflag><default>fast</default>
      <element>fast</element><element>slow</element></string-enumeration>
    <integer-enumeration><name>neighbours</name><longflag>--neighbours</longflag><default>6</default>
      <element>6</element><element>26</element></integer-enumeration>
  </parameters>
  <parameters>
    <label>Geometry</label>
    <point multiple="true" coordinateSystem="ras"><name>seeds</name><longflag>--seed</longflag></point>
    <region coordinateSystem="lps"><name>box</name><longflag>--box</longflag></region>
    <transform type="linear"><name>moving</name><longflag>--transform</longflag><channel>input</channel></transform>
    <directory><name>folder</name><longflag>--folder</longflag><channel>input</channel></directory>
  </parameters>
  <parameters>
    <label>IO</label>
    <image type="scalar" fileExtensions=".nrrd,.nii.gz"><name>input</name><channel>input</channel><index>0</index></image>
    <image type="label"><name>output</name><channel>output</channel><index>1</index></image>
    <geometry type="model" fileExtensions=".vtp"><name>surface</name><channel>output</channel><longflag>--surface</longflag></geometry>
    <table fileExtensions=".csv"><name>table</name><channel>output</channel><longflag>--table</longflag></table>
    <file multiple="true"><name>extras</name><channel>input</channel><longflag>--extra</longflag></file>
    <double><name>mean</name><channel>output</channel></double>
    <integer-vector><name>sizes</name><channel>output</channel></integer-vector>
  </parameters>
</executable>
"""


@pytest.fixture(scope="module")
def rich():
    return parse_descriptor(RICH, "everything")


def test_every_parameter_type_is_parsed(rich):
    types = {p.name: p.type for p in rich.parameters}
    assert types["seeds"] == "point" and types["box"] == "region" and types["moving"] == "transform"
    assert types["radius"] == "integer-vector" and types["method"] == "string-enumeration"
    seeds = rich.parameter("seeds")
    assert seeds.multiple and seeds.coordinate_system == "ras"
    verbose = rich.parameter("verbose")
    assert verbose.flag == "-v" and verbose.longflag == "--verbose" and verbose.default is False
    assert rich.parameter("iterations").constraints == {"minimum": 1.0, "maximum": 10.0, "step": 1.0}
    assert rich.parameter("radius").default == [1, 2, 3]
    assert rich.parameter("method").elements == ["fast", "slow"]
    assert rich.parameter("output").subtype == "label" and rich.parameter("input").file_extensions == [".nrrd", ".nii.gz"]
    assert [p.name for p in rich.return_parameters] == ["mean", "sizes"]
    assert rich.parameter("input").required and not rich.parameter("scale").required
    assert rich.version == "2.1" and rich.summary()["title"] == "Everything"


def test_json_shape_has_the_documented_keys(rich):
    shape = rich.to_json()
    assert {"name", "title", "category", "description", "parameters"} <= set(shape)
    for parameter in shape["parameters"]:
        assert {"name", "type", "channel", "label", "description", "default", "constraints", "elements",
                "flag", "longflag", "index"} <= set(parameter)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"input": "a", "iterations": 0}, "'iterations': must be at least 1"),
        ({"input": "a", "iterations": 11}, "'iterations': must be at most 10"),
        ({"input": "a", "iterations": 2.5}, "'iterations': expects an integer"),
        ({"input": "a", "iterations": True}, "'iterations': expects an integer"),
        ({"input": "a", "ratio": "abc"}, "'ratio': expects a number"),
        ({"input": "a", "ratio": float("nan")}, "'ratio': expects a finite number"),
        ({"input": "a", "verbose": "maybe"}, "'verbose': expects true or false"),
        ({"input": "a", "method": "medium"}, "'method': must be one of fast, slow"),
        ({"input": "a", "neighbours": 8}, "'neighbours': must be one of 6, 26"),
        ({"input": "a", "seeds": [[1, 2]]}, "'seeds': expects points of 3 coordinates"),
        ({"input": "a", "box": [0, 0, 0, 1, 1]}, "'box': expects [center x, y, z, radius x, y, z]"),
        ({"input": "a", "radius": "1,x,3"}, "'radius': expects an integer"),
        ({"input": 5}, "'input': expects an item id"),
        ({"input": "a", "nope": 1}, "has no parameter 'nope'"),
        ({"input": "a", "mean": 1}, "'mean' is an output value"),
        ({}, "'input' is required"),
    ],
)
def test_validation_names_the_parameter_and_the_rule(rich, raw, message):
    with pytest.raises(SlicerCloudError) as caught:
        rich.validate(raw)
    assert caught.value.status == 422
    assert message in caught.value.message


def test_command_line_is_an_argument_list_in_slicer_order(rich):
    values = rich.validate({
        "input": "ignored", "verbose": True, "iterations": "3", "ratio": 0.25, "note": "a b; rm -rf /",
        "seeds": [[1, 2, 3], [4, 5, 6]], "box": [0, 0, 0, 5, 5, 5], "tags": ["x", "y"], "neighbours": "26",
    })
    files = {"input": "/in.nrrd", "output": "/out.nrrd", "extras": ["/a.txt", "/b.txt"]}
    args = rich.command_line(values, files, return_file="/ret.txt")
    assert args[-4:] == ["/in.nrrd", "/out.nrrd", "--returnparameterfile", "/ret.txt"]
    assert "--verbose" in args and args[args.index("--iterations") + 1] == "3"
    assert args[args.index("-r") + 1] == "0.25"
    assert args[args.index("--note") + 1] == "a b; rm -rf /"  # one word, never a shell string
    assert [args[i + 1] for i, a in enumerate(args) if a == "--seed"] == ["1.0,2.0,3.0", "4.0,5.0,6.0"]
    assert args[args.index("--box") + 1] == "0.0,0.0,0.0,5.0,5.0,5.0"
    assert [args[i + 1] for i, a in enumerate(args) if a == "--extra"] == ["/a.txt", "/b.txt"]
    assert args[args.index("--radius") + 1] == "1,2,3"  # the default is passed, as Slicer does
    assert args[args.index("--method") + 1] == "fast"
    assert args[args.index("--neighbours") + 1] == "26"
    assert "--scale" not in args  # no value, no default: left out


def test_false_boolean_is_left_out(rich):
    args = rich.command_line(rich.validate({"input": "x", "verbose": False}), {"input": "/i", "output": "/o"})
    assert "--verbose" not in args and "-v" not in args


def test_broken_descriptors_are_refused():
    with pytest.raises(SlicerCloudError, match="not valid XML"):
        parse_descriptor("<executable><title>x", "broken")
    with pytest.raises(SlicerCloudError, match="unknown parameter type <colour>"):
        parse_descriptor("<executable><parameters><colour><name>c</name><longflag>c</longflag></colour></parameters></executable>", "odd")
    with pytest.raises(SlicerCloudError, match="no flag, longflag or index"):
        parse_descriptor("<executable><parameters><integer><name>n</name></integer></parameters></executable>", "odd")


def test_progress_lines():
    assert parse_progress("<filter-progress>0.25</filter-progress>").progress == 0.25
    assert parse_progress("<filter-progress>7</filter-progress>").progress == 1.0
    start = parse_progress("<filter-start><filter-name>Blur</filter-name><filter-comment>going</filter-comment></filter-start>")
    assert start.name == "Blur" and start.comment == "going"
    assert parse_progress("<filter-end><filter-name>Blur</filter-name></filter-end>").ended
    assert parse_progress("an ordinary log line") is None


def test_return_parameters_are_typed(rich):
    values = parse_return_text("mean = 2.5\nsizes = 1,2,3\nextra = text\nbroken line\n", rich)
    assert values == {"mean": 2.5, "sizes": [1, 2, 3], "extra": "text"}


@pytest.mark.parametrize("name", builtin.NAMES)
def test_builtin_descriptors_parse(name):
    module = builtin.load(name)
    descriptor = parse_descriptor(module.XML, name)
    assert descriptor.title and descriptor.category and descriptor.description
    assert any(p.is_file and p.channel == "input" for p in descriptor.parameters)
    assert descriptor.file_outputs

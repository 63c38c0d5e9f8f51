"""Drag handling of the 3D view: pending moves collapse into the latest, resolution drops while
a button is held. The adapter here records calls the way trame-rca's view adapter receives them."""

from __future__ import annotations

import asyncio

from slicer_cloud.viewer.interaction import lighten_drags
from tests.conftest import run_async


class RecordingAdapter:
    """Stands in for trame-rca's RcaViewAdapter: records events and scale changes in order."""

    def __init__(self) -> None:
        self.log: list[tuple] = []
        self._scale = 1.0

    def on_interaction(self, origin, event):
        self.log.append(("event", event["type"], event.get("x")))

    @property
    def scale(self):
        return self._scale

    @scale.setter
    def scale(self, value):
        self._scale = value
        self.log.append(("scale", value))


def move(x, pressed=True):
    return {"type": "MouseMove", "x": x, "buttonLeft": 1 if pressed else 0}


def test_moves_queued_during_a_drag_collapse_into_the_latest():
    adapter = RecordingAdapter()
    started = []
    lighten_drags(adapter, drag_scale=0.5, on_drag_start=lambda: started.append(True))

    async def drag():
        adapter.on_interaction("o", {"type": "LeftButtonPress", "x": 0})
        for x in range(1, 6):  # five moves arrive while the loop is busy
            adapter.on_interaction("o", move(x))
        await asyncio.sleep(0)  # the loop is free again: one move is processed
        adapter.on_interaction("o", move(9))
        adapter.on_interaction("o", {"type": "LeftButtonRelease", "x": 9})
        await asyncio.sleep(0)

    run_async(drag())
    assert started == [True]
    assert adapter.log == [
        ("scale", 0.5),
        ("event", "LeftButtonPress", 0),
        ("event", "MouseMove", 5),
        ("event", "MouseMove", 9),
        ("event", "LeftButtonRelease", 9),
        ("scale", 1.0),
    ]


def test_hovering_without_a_button_passes_every_move_through():
    adapter = RecordingAdapter()
    lighten_drags(adapter)

    async def hover():
        for x in range(3):
            adapter.on_interaction("o", move(x, pressed=False))

    run_async(hover())
    assert adapter.log == [("event", "MouseMove", 0), ("event", "MouseMove", 1), ("event", "MouseMove", 2)]

"""Keeping the 3D view interactive on a CPU while the user drags it.

Two things, applied to one view's remote-controlled area adapter:

* Coalescing: a volume-rendered frame can take longer than the gap between two mouse moves, so
  moves pile up in the websocket and would each be rendered in turn, the view lagging seconds
  behind the hand. While a button is held, only the latest pending move is processed.
* Lower resolution: while a button is held, the view renders at ``drag_scale`` of its size (a
  quarter of the pixels at 0.5) and goes back to full size, full quality, on release.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

_BUTTONS = ("buttonLeft", "buttonMiddle", "buttonRight")


def lighten_drags(adapter: Any, *, drag_scale: float = 0.5, on_drag_start: Callable[[], None] | None = None) -> None:
    """Wrap ``adapter.on_interaction`` (a trame-rca view adapter) with coalescing and scaling."""
    process = adapter.on_interaction
    pending: list[tuple[Any, dict]] = []
    dragging = [False]

    def flush() -> None:
        if pending:
            origin, event = pending.pop()
            pending.clear()
            process(origin, event)

    def on_interaction(origin: Any, event: dict) -> None:
        kind = event.get("type", "")
        if kind == "MouseMove" and dragging[0] and any(event.get(b) for b in _BUTTONS):
            if not pending:
                asyncio.get_running_loop().call_soon(flush)
            pending[:] = [(origin, event)]
            return
        flush()  # keep the order of events: the last move before a release
        if kind.endswith("ButtonPress") and not dragging[0]:
            dragging[0] = True
            if on_drag_start is not None:
                on_drag_start()
            adapter.scale = drag_scale
        process(origin, event)
        if kind.endswith("ButtonRelease") and dragging[0]:
            dragging[0] = False
            adapter.scale = 1.0

    adapter.on_interaction = on_interaction

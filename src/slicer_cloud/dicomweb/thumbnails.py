"""A small PNG of a series' middle image, made here (servers differ in what /rendered offers)."""

from __future__ import annotations

import base64
import io

import numpy as np

from slicer_cloud.dicomweb.connection import Connection
from slicer_cloud.dicomweb.reference import SeriesRef
from slicer_cloud.dicomweb.retrieve import AS_STORED, UNCOMPRESSED

SIZE = 64


def _instance_number(item: dict) -> int:
    try:
        return int((item.get("00200013") or {}).get("Value", [0])[0])
    except (TypeError, ValueError, IndexError):
        return 0


def thumbnail_png(conn: Connection, ref: SeriesRef) -> bytes | None:
    """PNG bytes of the middle image of the series, or None when it has no image to show."""
    from PIL import Image

    with conn.errors("making a thumbnail"):
        items = conn.client.search_for_instances(ref.study, ref.series, fields=["InstanceNumber", "Rows"], limit=5000)
        items = [i for i in items if "00080018" in i]
        if not items:
            return None
        items.sort(key=_instance_number)
        sop = str(items[len(items) // 2]["00080018"]["Value"][0])
        media = UNCOMPRESSED if conn.settings.dicomweb_uncompressed else AS_STORED
        ds = conn.client.retrieve_instance(ref.study, ref.series, sop, media_types=(media,))
        if int(ds.get("Rows", 0) or 0) <= 0 or "PixelData" not in ds or str(ds.get("Modality", "")) == "SEG":
            return None
        try:
            pixels = ds.pixel_array
        except Exception:  # no decoder here: ask for uncompressed pixels once
            ds = conn.client.retrieve_instance(ref.study, ref.series, sop, media_types=(UNCOMPRESSED,))
            pixels = ds.pixel_array
    if pixels.ndim == 3 and pixels.shape[-1] not in (3, 4):
        pixels = pixels[pixels.shape[0] // 2]
    values = pixels.astype(np.float32)
    if values.ndim == 2:
        low, high = np.percentile(values, (1, 99))
        scaled = np.clip((values - low) / max(high - low, 1e-6) * 255, 0, 255).astype(np.uint8)
        image = Image.fromarray(scaled, mode="L")
    else:
        image = Image.fromarray(np.clip(values, 0, 255).astype(np.uint8)[..., :3], mode="RGB")
    image.thumbnail((SIZE, SIZE))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def thumbnail_data_url(conn: Connection, ref: SeriesRef) -> str:
    png = thumbnail_png(conn, ref)
    return "data:image/png;base64," + base64.b64encode(png).decode() if png else ""

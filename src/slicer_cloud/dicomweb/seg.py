"""Label maps as DICOM SEG (``highdicom``), stored with STOW-RS, and read back onto their volume.

A SEG written here references every source instance of the series it was painted on, carries
that series' frame of reference, and describes each segment with its label, its display colour
and coded terminology (SNOMED CT category and type; "Tissue" unless the caller knows better), so
other viewers (OHIF, 3D Slicer, dcm4che's) show it as the same segments.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from slicer_cloud.dicomweb.connection import Connection
from slicer_cloud.dicomweb.reference import SeriesRef
from slicer_cloud.dicomweb.retrieve import LABELMAP_SEGMENTATION_STORAGE, SEGMENTATION_STORAGE, RemoteSeries
from slicer_cloud.errors import SlicerCloudError

log = logging.getLogger("slicer_cloud.dicomweb")

MAX_SEGMENTS = 255


@dataclass(frozen=True)
class Segment:
    """One segment of a label map: its value in the map, its name and colour (RGB, 0-1)."""

    number: int
    label: str
    color: tuple[float, float, float] = (0.5, 0.5, 0.5)
    #: (code value, scheme, meaning) of the SNOMED CT category and type
    category: tuple[str, str, str] = ("85756007", "SCT", "Tissue")
    type: tuple[str, str, str] = ("85756007", "SCT", "Tissue")


def _code(triple: tuple[str, str, str]):
    from highdicom.sr import CodedConcept

    value, scheme, meaning = triple
    return CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)


def build_seg(
    labels: np.ndarray,
    remote: RemoteSeries,
    segments: list[Segment],
    *,
    encoding: str = "binary",
    description: str = "Segmentation",
    series_number: int = 900,
):
    """A DICOM SEG dataset of ``labels`` (shape k, j, i, values = segment numbers) over ``remote``."""
    import highdicom as hd

    from slicer_cloud import __version__

    if labels.shape != remote.shape:
        raise SlicerCloudError("The segmentation does not have the size of the series it was painted on.", status=409)
    if not segments:
        raise SlicerCloudError("Nothing to save: the segmentation has no segments.")
    if len(segments) > MAX_SEGMENTS:
        raise SlicerCloudError(f"A DICOM SEG written here holds at most {MAX_SEGMENTS} segments.")
    numbers = [s.number for s in segments]
    if sorted(numbers) != list(range(1, len(segments) + 1)):
        raise ValueError("segment numbers must be 1..n")
    if not np.any(labels):
        raise SlicerCloudError("Nothing to save: every segment is empty.")
    labels = labels.astype(np.uint8 if len(segments) < 256 else np.uint16)
    sources = remote.sources
    multiframe = len(sources) == 1 and len(remote.slices) > 1
    if multiframe:
        # one enhanced source instance: SEG frames follow the source's frame order
        order = np.argsort([frame for _, frame in remote.slices])
        pixels = labels[order]
    else:
        pixels = labels
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=s.number,
            segment_label=s.label[:64] or f"Segment {s.number}",
            segmented_property_category=_code(s.category),
            segmented_property_type=_code(s.type),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            display_color=hd.color.CIELabColor.from_rgb(*(float(np.clip(c, 0, 1)) * 255 for c in s.color)),
        )
        for s in segments
    ]
    kind = hd.seg.SegmentationTypeValues.LABELMAP if encoding == "labelmap" else hd.seg.SegmentationTypeValues.BINARY
    try:
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=pixels,
            segmentation_type=kind,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="slicer-cloud",
            manufacturer_model_name="slicer-cloud",
            software_versions=str(__version__),
            device_serial_number="0",
            content_description=description[:64],
            content_label="SEGMENTATION",
            omit_empty_frames=True,
        )
    except (ValueError, TypeError, AttributeError) as error:
        raise SlicerCloudError(
            "The segmentation cannot be written as DICOM SEG for this series.", status=409, detail=repr(error)
        ) from None
    seg.SeriesDescription = description[:64]
    return seg


def store_seg(conn: Connection, seg, ref: SeriesRef) -> SeriesRef:
    """STOW-RS the SEG into the source's study; returns the SEG series' reference."""
    with conn.errors("storing the segmentation"):
        conn.client.store_instances([seg], study_instance_uid=ref.study)
    return SeriesRef(server=ref.server, study=ref.study, series=str(seg.SeriesInstanceUID))


@dataclass
class SegOnVolume:
    """A SEG read back onto the series it references."""

    labels: np.ndarray  # (k, j, i), values = segment numbers
    segments: list[Segment]
    source: SeriesRef
    ref: SeriesRef


def referenced_series(conn: Connection, ref: SeriesRef):
    """Retrieve a SEG series' instance; returns (highdicom Segmentation, the source series reference)."""
    import highdicom as hd

    from slicer_cloud.dicomweb.retrieve import AS_STORED

    with conn.errors("reading the segmentation"):
        instances = conn.client.search_for_instances(ref.study, ref.series, fields=["SOPClassUID"], limit=2)
        if not instances:
            raise SlicerCloudError("The segmentation series is empty.", status=404)
        sop = str(instances[0]["00080018"]["Value"][0])
        ds = conn.client.retrieve_instance(ref.study, ref.series, sop, media_types=(AS_STORED,))
        if str(ds.SOPClassUID) not in (SEGMENTATION_STORAGE, LABELMAP_SEGMENTATION_STORAGE):
            raise SlicerCloudError("This series is not a DICOM segmentation.")
        seg = hd.seg.Segmentation.from_dataset(ds)
        series_uids = {str(item.SeriesInstanceUID) for item in seg.ReferencedSeriesSequence}
    if len(series_uids) != 1:
        raise SlicerCloudError("The segmentation references several series; slicer-cloud opens one at a time.")
    return seg, SeriesRef(server=ref.server, study=ref.study, series=series_uids.pop())


def seg_on_volume(seg, remote: RemoteSeries, ref: SeriesRef) -> SegOnVolume:
    """The SEG's segments as one label map aligned with ``remote``'s slices."""
    numbers = list(seg.segment_numbers)
    with_errors = "The segmentation does not fit the series it references"
    try:
        if len(remote.sources) == 1 and len(remote.slices) > 1:
            sop = remote.slices[0][0]
            pixels = seg.get_pixels_by_source_frame(
                source_sop_instance_uid=sop, source_frame_numbers=[f + 1 for _, f in remote.slices],
                combine_segments=True, skip_overlap_checks=True, assert_missing_frames_are_empty=True,
            )
        else:
            pixels = seg.get_pixels_by_source_instance(
                source_sop_instance_uids=[sop for sop, _ in remote.slices],
                combine_segments=True, skip_overlap_checks=True, assert_missing_frames_are_empty=True,
            )
    except (ValueError, KeyError, RuntimeError) as error:
        raise SlicerCloudError(f"{with_errors}.", status=409, detail=repr(error)) from None
    if pixels.shape != remote.shape:
        raise SlicerCloudError(f"{with_errors}: its size differs.", status=409)
    segments = []
    for number in numbers:
        description = seg.get_segment_description(number)
        color = (0.5, 0.5, 0.5)
        lab = getattr(description, "RecommendedDisplayCIELabValue", None)
        if lab is not None:
            color = _lab_to_rgb(lab)
        segments.append(Segment(number=int(number), label=str(description.segment_label), color=color))
    return SegOnVolume(labels=np.asarray(pixels), segments=segments, source=remote.ref, ref=ref)


def _lab_to_rgb(dicom_lab) -> tuple[float, float, float]:
    import highdicom as hd

    r, g, b = hd.color.CIELabColor.from_dicom_value([int(v) for v in dicom_lab]).to_rgb()
    return (r / 255.0, g / 255.0, b / 255.0)

"""``slicer-cloud run`` over DICOMweb series: every series a reference or query names becomes one
case (fetched as NRRD), and with ``--to-pacs`` each case's label map outputs go back to the same
server as DICOM SEG in the series' study. A series that cannot be fetched or stored fails its
case with the reason; the batch goes on."""

from __future__ import annotations

from pathlib import Path

from slicer_cloud.errors import SlicerCloudError


def expand_dicomweb(given: str, fetch_dir: Path, reasons: dict[str, str]) -> list[tuple[str, Path | None]]:
    from slicer_cloud.dicomweb.compute import expand_reference, series_to_nrrd

    try:
        refs = expand_reference(given)
    except SlicerCloudError as error:
        reasons[given] = error.message
        return [(given, None)]
    if not refs:
        reasons[given] = f"No image series matches {given}."
        return [(given, None)]
    found: list[tuple[str, Path | None]] = []
    for ref in refs:
        source = str(ref)
        try:
            found.append((source, series_to_nrrd(ref, fetch_dir)))
        except SlicerCloudError as error:
            reasons[source] = error.message
            found.append((source, None))
    return found


def _labelmap_outputs(entry, outputs: list[str]) -> list[str]:
    """The outputs of label map parameters (batch outputs follow the descriptor's order)."""
    return [
        name for parameter, name in zip(entry.descriptor.file_outputs, outputs)
        if parameter.type == "image" and (parameter.subtype or "") in ("label", "segmentation")
    ]


def export_case_outputs(case, entry, out: Path) -> None:
    """Store the case's label map outputs as DICOM SEG next to its source series."""
    from slicer_cloud.dicomweb.compute import export_labelmap
    from slicer_cloud.dicomweb.reference import parse_reference

    ref = parse_reference(case.source)
    labelmaps = _labelmap_outputs(entry, case.outputs)
    if not labelmaps:
        case.notes.append("no label map output to store as SEG")
        return
    for name in labelmaps:
        try:
            seg_ref = export_labelmap(out / name, ref, description=f"{entry.name} {Path(name).stem}"[:64])
        except SlicerCloudError as error:
            case.state = "failed"
            case.error = f"{name} could not be stored as DICOM SEG: {error.message}"
            return
        case.notes.append(f"SEG {seg_ref}")

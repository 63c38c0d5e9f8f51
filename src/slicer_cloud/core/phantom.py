"""The built-in sample: a deterministic CT-like torso phantom, written as NRRD or as a DICOM series.

Anatomy is laid out in normalised coordinates (u, v, w) in [-1, 1] across the field of view
(u: patient left, v: posterior, w: superior, as in LPS), so any shape gives the same picture.
Values are Hounsfield units of a contrast-enhanced abdominal/chest CT. Each slice is painted
with whole-array masks (no per-voxel Python), so the default 256x256x128 volume takes well under
a second.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slicer_cloud.config import default_cache_dir
from slicer_cloud.core.nrrd_io import write_nrrd
from slicer_cloud.store.atomic import atomic_output

__all__ = ["HU", "Phantom", "make_phantom", "write_nrrd", "sample_path", "write_dicom_series", "PHANTOM_VERSION"]

#: Change whenever the generator's output changes: cached samples are keyed by it.
PHANTOM_VERSION = "1"

#: Hounsfield units of each tissue.
HU = {
    "air": -1000,
    "lung": -850,
    "fat": -100,
    "soft_tissue": 40,
    "mediastinum": 20,
    "blood": 45,
    "vessel": 40,
    "liver": 60,
    "lesion": 120,  # +60 over the liver around it
    "spleen": 50,
    "kidney": 35,
    "cortical_bone": 900,
    "rib": 700,
    "cancellous_bone": 250,
    "disc": 90,
    "csf": 15,
}

Vector3 = tuple[float, float, float]


@dataclass(frozen=True, eq=False)
class Phantom:
    """A CT volume: ``array`` is int16 of shape (k, j, i); geometry in LPS millimetres."""

    array: np.ndarray
    spacing: Vector3
    origin: Vector3
    #: named points (i, j, k) with a known tissue, for tests and demos: name -> (index, HU).
    landmarks: dict[str, tuple[tuple[int, int, int], int]] = field(default_factory=dict)

    @property
    def direction(self) -> tuple[Vector3, Vector3, Vector3]:
        return ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(i, j, k), the order the rest of slicer-cloud uses for dimensions."""
        k, j, i = self.array.shape
        return (i, j, k)


# --------------------------------------------------------------------------------------------
# anatomy

_VERTEBRA_PERIOD = 0.2  # in w: about 26 mm for the default field of view
_DISC_FRACTION = 0.22  # share of each period taken by the intervertebral disc
_ENDPLATE = 0.015  # in w: cortical end plates above and below each disc


def _ellipse(u: np.ndarray, v: np.ndarray, cu: float, cv: float, au: float, av: float) -> np.ndarray:
    if au <= 0 or av <= 0:
        return np.zeros(u.shape, dtype=bool)
    return ((u - cu) / au) ** 2 + ((v - cv) / av) ** 2 <= 1.0


def _dome(w: float, centre: float, half_height: float) -> float:
    """Scale of a body that is widest at ``centre`` and closes over ``half_height`` in w."""
    t = (w - centre) / half_height
    return float(np.sqrt(1.0 - t * t)) if abs(t) < 1.0 else 0.0


def _vertebra_phase(w: float) -> float:
    return ((w + 1.0) / _VERTEBRA_PERIOD) % 1.0


def _paint_slice(out: np.ndarray, u: np.ndarray, v: np.ndarray, w: float) -> None:
    """Paint one axial slice (j, i) at height ``w``; later structures overwrite earlier ones."""
    out.fill(HU["air"])
    body_outer = _ellipse(u, v, 0.0, 0.02, 0.88, 0.72)
    body_inner = _ellipse(u, v, 0.0, 0.02, 0.82, 0.66)
    out[body_outer] = HU["fat"]
    out[body_inner] = HU["soft_tissue"]

    # Abdomen below the diaphragm: liver (patient right = -u), spleen, kidneys.
    liver = _dome(w, -0.65, 0.42)
    out[_ellipse(u, v, -0.38, 0.0, 0.42 * liver, 0.5 * liver) & body_inner] = HU["liver"]
    spleen = _dome(w, -0.65, 0.25)
    out[_ellipse(u, v, 0.56, 0.25, 0.12 * spleen, 0.2 * spleen)] = HU["spleen"]
    kidney = _dome(w, -0.8, 0.2)
    for side in (-1.0, 1.0):
        out[_ellipse(u, v, side * 0.3, 0.38, 0.1 * kidney, 0.14 * kidney)] = HU["kidney"]

    # Chest: mediastinum, lungs with vessels, heart, ribs.
    if w > -0.45:
        out[_ellipse(u, v, 0.0, -0.1, 0.13, 0.45) & body_inner] = HU["mediastinum"]
    lung = _dome(w, 0.25, 0.75)
    for side in (-1.0, 1.0):
        lung_mask = _ellipse(u, v, side * 0.42, 0.02, 0.28 * lung, 0.42 * lung)
        out[lung_mask] = HU["lung"]
        # vessels run up through each lung, drifting outwards with height
        for du, dv in ((-0.13, 0.16), (0.1, -0.14), (0.05, 0.27), (-0.06, -0.28)):
            vessel = _ellipse(u, v, side * (0.42 + du * (1.0 + 0.3 * w)), 0.02 + dv, 0.025, 0.025)
            out[vessel & lung_mask] = HU["vessel"]
    heart = _dome(w, 0.0, 0.4)
    out[_ellipse(u, v, 0.08, -0.18, 0.26 * heart, 0.24 * heart)] = HU["blood"]
    if w > -0.95:
        out[_ellipse(u, v, 0.14, 0.25, 0.05, 0.05)] = HU["blood"]  # descending aorta
    if -0.45 < w < 0.95:
        phase = ((w + 1.0) / 0.12) % 1.0  # ribs: one ring band every 0.12 in w
        if phase < 0.3:
            ring = _ellipse(u, v, 0.0, 0.02, 0.79, 0.61) & ~_ellipse(u, v, 0.0, 0.02, 0.745, 0.565)
            beside_spine = np.abs(u) > 0.17
            out[ring & (beside_spine | (v < 0.0)) & (np.abs(u) > 0.08)] = HU["rib"]
        out[(np.abs(u) < 0.06) & (v > -0.64) & (v < -0.59)] = HU["rib"]  # sternum

    # Spine: vertebral bodies (cortical shell, cancellous core) with discs, and the neural arch.
    phase = _vertebra_phase(w)
    in_disc = phase < _DISC_FRACTION
    body = _ellipse(u, v, 0.0, 0.36, 0.11, 0.11)
    if in_disc:
        out[body] = HU["disc"]
    else:
        near_plate = min(phase - _DISC_FRACTION, 1.0 - phase) * _VERTEBRA_PERIOD < _ENDPLATE
        out[body] = HU["cortical_bone"]
        if not near_plate:
            out[_ellipse(u, v, 0.0, 0.36, 0.085, 0.085)] = HU["cancellous_bone"]
        arch = _ellipse(u, v, 0.0, 0.53, 0.085, 0.085)
        out[arch] = HU["cortical_bone"]
        out[(np.abs(u) < 0.025) & (v > 0.58) & (v < 0.65)] = HU["cortical_bone"]  # spinous process
        out[(np.abs(u) > 0.05) & (np.abs(u) < 0.17) & (np.abs(v - 0.5) < 0.025)] = HU["cortical_bone"]
    out[_ellipse(u, v, 0.0, 0.53, 0.055, 0.055)] = HU["csf"]  # spinal canal


_LESION = (-0.42, -0.05, -0.7, 0.1)  # u, v, w centre; radius as a share of the smallest half-extent


def _landmarks(shape: tuple[int, int, int]) -> dict[str, tuple[tuple[int, int, int], int]]:
    def index(u: float, v: float, w: float) -> tuple[int, int, int]:
        return tuple(int(round((c + 1.0) * (n - 1) / 2.0)) for c, n in zip((u, v, w), shape))  # type: ignore[return-value]

    # a spine height in the middle of a vertebra, near the centre of the volume
    n = round((1.0 - 0.5 * (1 + _DISC_FRACTION) * _VERTEBRA_PERIOD) / _VERTEBRA_PERIOD)
    spine_w = -1.0 + _VERTEBRA_PERIOD * (n + 0.5 * (1 + _DISC_FRACTION))
    return {
        "air": (index(-0.98, -0.98, 0.0), HU["air"]),
        "fat": (index(0.0, -0.67, -0.8), HU["fat"]),
        "lung_right": (index(-0.42, 0.02, 0.25), HU["lung"]),
        "lung_left": (index(0.42, 0.02, 0.25), HU["lung"]),
        "heart": (index(0.08, -0.18, 0.0), HU["blood"]),
        "liver": (index(-0.5, 0.25, -0.65), HU["liver"]),
        "lesion": (index(*_LESION[:3]), HU["lesion"]),
        "spine": (index(0.0, 0.36, spine_w), HU["cancellous_bone"]),
        "disc": (index(0.0, 0.36, -1.0 + _VERTEBRA_PERIOD * (n + 0.5 * _DISC_FRACTION)), HU["disc"]),
    }


def make_phantom(
    shape: tuple[int, int, int] = (256, 256, 128),
    spacing: tuple[float, float, float] = (1.0, 1.0, 2.0),
    *,
    noise_hu: float = 0.0,
    seed: int = 0,
) -> Phantom:
    """A CT-like torso of ``shape`` (i, j, k) voxels, centred on the LPS origin.

    ``noise_hu`` adds Gaussian noise of that standard deviation from a generator seeded with
    ``seed``, so the result is the same on every call.
    """
    ni, nj, nk = (int(n) for n in shape)
    if min(ni, nj, nk) < 1:
        raise ValueError(f"phantom shape must be positive, got {shape}")
    sx, sy, sz = (float(s) for s in spacing)
    origin = (-(ni - 1) * sx / 2.0, -(nj - 1) * sy / 2.0, -(nk - 1) * sz / 2.0)
    u = np.linspace(-1.0, 1.0, ni) if ni > 1 else np.zeros(1)
    v = np.linspace(-1.0, 1.0, nj) if nj > 1 else np.zeros(1)
    w_values = np.linspace(-1.0, 1.0, nk) if nk > 1 else np.zeros(1)
    uu, vv = np.meshgrid(u, v)  # (j, i)
    array = np.empty((nk, nj, ni), dtype=np.int16)
    for k, w in enumerate(w_values):
        _paint_slice(array[k], uu, vv, float(w))

    # The lesion is a true sphere in millimetres, whatever the spacing.
    half = np.array([(ni - 1) * sx, (nj - 1) * sy, (nk - 1) * sz]) / 2.0
    radius = _LESION[3] * float(min(h for h in half if h > 0) if np.any(half > 0) else 1.0)
    centre = np.array(_LESION[:3]) * half
    x = u * half[0]
    y = v * half[1]
    z = w_values * half[2]
    k_hit = np.nonzero(np.abs(z - centre[2]) <= radius)[0]
    for k in k_hit:
        r2 = radius**2 - (z[k] - centre[2]) ** 2
        disk = (x[None, :] - centre[0]) ** 2 + (y[:, None] - centre[1]) ** 2 <= r2
        array[k][disk] = HU["lesion"]

    if noise_hu > 0:
        rng = np.random.default_rng(seed)
        for k in range(nk):  # slice by slice: no float64 copy of the whole volume
            noisy = array[k] + rng.normal(0.0, noise_hu, size=array[k].shape)
            array[k] = np.clip(np.rint(noisy), -1024, 3071).astype(np.int16)
    return Phantom(array=array, spacing=(sx, sy, sz), origin=origin, landmarks=_landmarks((ni, nj, nk)))


# --------------------------------------------------------------------------------------------
# the cached sample file


def sample_path(cache_dir: Path | None = None) -> Path:
    """The built-in sample CT (NRRD), generated on first use into ``cache_dir``.

    ``cache_dir`` is the folder the file goes in (default: ``<cache>/samples`` under
    :func:`slicer_cloud.config.default_cache_dir`). The file name carries
    :data:`PHANTOM_VERSION`, so a changed generator writes a new file. Concurrent callers, in
    threads or processes, wait on a lock and find the finished file; it appears atomically.
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "samples"
    target = folder / f"ct-phantom-v{PHANTOM_VERSION}.nrrd"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with _file_lock(folder / f".ct-phantom-v{PHANTOM_VERSION}.lock"):
        if not target.is_file():  # another caller may have finished while we waited
            phantom = make_phantom()
            write_nrrd(target, phantom.array, phantom.spacing, phantom.origin, phantom.direction)
    return target


@contextlib.contextmanager
def _file_lock(lock_path: Path) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# --------------------------------------------------------------------------------------------
# DICOM


_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_RESCALE_INTERCEPT = -1024  # stored values are HU + 1024 in unsigned 12 bits, as on most scanners


def write_dicom_series(
    folder: Path,
    phantom: Phantom,
    *,
    series_uid: str | None = None,
    description: str = "Phantom CT",
    modality: str = "CT",
) -> list[Path]:
    """Write ``phantom`` as classic single-frame DICOM files (one per slice) into ``folder``.

    Files are ``IM0001.dcm`` ... in slice order, each written atomically; returns their paths.
    Stored pixels are unsigned 12-bit with RescaleIntercept -1024, as most CT scanners store them.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    # Other identifiers derive from the series UID, so one series always gets the same ones.
    study_uid = generate_uid(entropy_srcs=[series_uid, "study"])
    frame_uid = generate_uid(entropy_srcs=[series_uid, "frame"])
    nk, nj, ni = phantom.array.shape
    sx, sy, sz = phantom.spacing
    stored_max = 4095
    written: list[Path] = []
    for k in range(nk):
        stored = phantom.array[k].astype(np.int32) - _RESCALE_INTERCEPT
        if stored.min() < 0 or stored.max() > stored_max:
            raise ValueError("phantom values must lie in -1024..3071 HU to be stored in 12 bits")
        sop_uid = generate_uid(entropy_srcs=[series_uid, str(k)])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = _CT_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = _CT_IMAGE_STORAGE
        ds.SOPInstanceUID = sop_uid
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20260101"
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
        ds.AccessionNumber = ""
        ds.Modality = modality
        ds.Manufacturer = "slicer-cloud"
        ds.StudyDescription = "slicer-cloud phantom"
        ds.SeriesDescription = description
        ds.PatientName = "Phantom^CT"
        ds.PatientID = "PHANTOM"
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.BodyPartExamined = "CHEST"
        ds.SliceThickness = f"{sz:g}"
        ds.KVP = "120"
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = 1
        ds.InstanceNumber = k + 1
        position = np.asarray(phantom.origin) + k * sz * np.asarray(phantom.direction)[:, 2]
        ds.ImagePositionPatient = [f"{c:.6g}" for c in position]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = f"{position[2]:.6g}"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = nj
        ds.Columns = ni
        ds.PixelSpacing = [f"{sy:g}", f"{sx:g}"]  # row spacing (between rows, along j), then column spacing
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = str(_RESCALE_INTERCEPT)
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
        ds.PixelData = stored.astype("<u2").tobytes()
        target = folder / f"IM{k + 1:04d}.dcm"
        with atomic_output(target) as tmp:
            _save(pydicom, ds, tmp)
        written.append(target)
    return written


def _save(pydicom_module, ds, path: Path) -> None:
    """Write with a preamble and file meta, on pydicom 2.4 and 3.x alike."""
    try:
        pydicom_module.dcmwrite(path, ds, enforce_file_format=True)
    except TypeError:  # pydicom < 3
        ds.is_little_endian = True
        ds.is_implicit_VR = False
        pydicom_module.dcmwrite(path, ds, write_like_original=False)

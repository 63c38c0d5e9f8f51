"""Seed inputs for the header fuzzer: a sound file of each format and the corpus cases of it."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORMAT_OF = {".nrrd": "nrrd", ".nii": "nifti", ".mha": "metaimage", ".dcm": "dicom"}


def corpus_module():
    name = "slicer_cloud_test_corpus"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "corpus" / "make_corpus.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def write_seeds(out: Path) -> dict[str, Path]:
    """out/FORMAT/ holds the seeds of each format (single files only: the fuzzer feeds one file)."""
    from slicer_cloud.core.nrrd_io import write_nrrd

    corpus = corpus_module()
    folders = {fmt: out / fmt for fmt in FORMAT_OF.values()}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    array = corpus.small_array()
    write_nrrd(folders["nrrd"] / "sound.nrrd", array, (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    write_nrrd(folders["nrrd"] / "sound_gzip.nrrd", array, (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), compress=True) if _takes_compress() else None
    (folders["nifti"] / "sound.nii").write_bytes(corpus.nifti_bytes(array))
    (folders["metaimage"] / "sound.mha").write_bytes(corpus.metaimage_text().encode() + array.tobytes())
    with tempfile.TemporaryDirectory() as scratch:
        files = corpus.write_dicom_folder(Path(scratch) / "series", shape=(16, 12, 1))
        shutil.copy(files[0], folders["dicom"] / "sound.dcm")
        for case in corpus.CASES:
            if case.limits:
                continue
            case_dir = Path(scratch) / case.name
            case_dir.mkdir()
            built = case.build(case_dir)
            paths = [built] if built.is_file() else [p for p in built.rglob("*") if p.is_file()][:2]
            for path in paths:
                fmt = FORMAT_OF.get(path.suffix.lower())
                if fmt and path.stat().st_size <= 256 * 1024:  # bombs are no use as seeds
                    shutil.copy(path, folders[fmt] / f"{case.name}-{path.name}")
    return folders


def _takes_compress() -> bool:
    import inspect

    from slicer_cloud.core.nrrd_io import write_nrrd

    return "compress" in inspect.signature(write_nrrd).parameters

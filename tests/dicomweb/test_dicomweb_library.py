"""DICOMweb against a real Orthanc: settings, search, retrieval (plain, compressed, enhanced
multi-frame), DICOM SEG round trip, and the failures a user must understand."""

from __future__ import annotations

import json
import socket
import threading

import numpy as np
import pytest

from slicer_cloud.config import Limits
from slicer_cloud.dicomweb import retrieve, search
from slicer_cloud.dicomweb import seg as segmod
from slicer_cloud.dicomweb.connection import Connection
from slicer_cloud.dicomweb.reference import SeriesRef, parse_reference
from slicer_cloud.dicomweb.settings import DicomwebServer, DicomwebSettings, parse_server_spec
from slicer_cloud.errors import SlicerCloudError


def ref_of(datasets) -> SeriesRef:
    return SeriesRef("orthanc", str(datasets[0].StudyInstanceUID), str(datasets[0].SeriesInstanceUID))


# -- settings and references -------------------------------------------------------------------
def test_server_specs_and_environment(tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text("abc123\n")
    server = parse_server_spec(f"name=hospital,url=https://pacs.example/dicom-web/,auth=bearer,token_file={token}")
    assert (server.name, server.url, server.secret()) == ("hospital", "https://pacs.example/dicom-web", "abc123")
    assert parse_server_spec("local=http://127.0.0.1:8042/dicom-web").auth == "none"
    with pytest.raises(SlicerCloudError, match="token_file"):
        parse_server_spec("name=a,url=http://x,auth=bearer,token=visible")
    with pytest.raises(SlicerCloudError, match="http"):
        parse_server_spec("a=ftp://x")
    with pytest.raises(SlicerCloudError, match="needs a username"):
        parse_server_spec("name=a,url=http://x,auth=basic")
    monkeypatch.setenv("SLICER_CLOUD_DICOMWEB_SERVERS", json.dumps([{"name": "env", "url": "http://h/dw"}]))
    from slicer_cloud.dicomweb.settings import load_settings

    settings = load_settings()
    assert [s.name for s in settings.servers()] == ["env"]
    with pytest.raises(SlicerCloudError, match="no DICOMweb server named 'nope'.*env"):
        settings.server("nope")
    # what a browser may see: the name only
    assert server.public() == {"name": "hospital"}


def test_references():
    ref = parse_reference("dicomweb:orthanc/1.2.3/4.5.6")
    assert ref == SeriesRef("orthanc", "1.2.3", "4.5.6") and str(ref) == "dicomweb:orthanc/1.2.3/4.5.6"
    for bad in ("dicomweb:orthanc/1.2.3", "dicomweb:orthanc/1.2.x/4", "dicomweb:o/1/2/3", "orthanc/1/2"):
        with pytest.raises(SlicerCloudError):
            parse_reference(bad)


# -- search and retrieve -----------------------------------------------------------------------
def test_search_lists_stored_studies_and_series(conn, stored):
    phantom, datasets = stored["plain"]
    studies = search.search_studies(conn, patient="phantom")
    study = str(datasets[0].StudyInstanceUID)
    row = next(r for r in studies if r["study"] == study)
    assert row["patient_id"] == "PHANTOM" and row["modalities"] == "CT" and row["date"] == "2026-01-01"
    assert search.search_studies(conn, patient="nobody-like-this") == []
    assert any(r["study"] == study for r in search.search_studies(conn, date_from="2025-12-31", date_to="2026-01-02"))
    assert [r["study"] for r in search.search_studies(conn, description="phantom", patient="Phantom CT")]
    assert not any(r["study"] == study for r in search.search_studies(conn, date_from="2026-02-01"))
    with pytest.raises(SlicerCloudError, match="not a date"):
        search.search_studies(conn, date_from="yesterday")
    series = search.search_series(conn, study)
    assert [(s["series"], s["modality"], s["instances"]) for s in series] == [
        (str(datasets[0].SeriesInstanceUID), "CT", len(datasets))
    ]


SYNTAXES = {"jpegls": "1.2.840.10008.1.2.4.80", "rle": "1.2.840.10008.1.2.5", "j2k": "1.2.840.10008.1.2.4.90"}


@pytest.mark.parametrize("key", ["plain", "jpegls", "rle", "j2k"])
def test_retrieve_matches_the_stored_volume(conn, stored, key):
    phantom, datasets = stored[key]
    ref = ref_of(datasets)
    if key in SYNTAXES:  # the server keeps and sends the compressed transfer syntax; we decode it
        sop = str(datasets[0].SOPInstanceUID)
        sent = retrieve.retrieve_instance(conn, ref, sop)
        assert sent.file_meta.TransferSyntaxUID == SYNTAXES[key]
    remote = retrieve.describe(conn, ref)
    assert remote.shape == phantom.array.shape
    assert remote.info().spacing == pytest.approx(phantom.spacing)
    assert remote.info().origin == pytest.approx(phantom.origin)
    seen: list[int] = []
    volume = np.zeros(remote.shape, remote.dtype)
    retrieve.fetch_slices(conn, remote, volume, on_slice=seen.append)
    assert seen[0] == (len(datasets) - 1) // 2 or len(set(seen)) == len(datasets)
    assert sorted(seen) == list(range(len(datasets)))
    assert np.array_equal(volume, phantom.array)


def test_uncompressed_on_request(dw_settings, stored, orthanc):
    phantom, datasets = stored["jpegls"]
    settings = dw_settings.model_copy(update={"dicomweb_uncompressed": True})
    conn = Connection(settings.server("orthanc"), settings)
    sent = retrieve.retrieve_instance(conn, ref_of(datasets), str(datasets[0].SOPInstanceUID))
    assert sent.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    volume, _info, _remote = retrieve.read_volume(conn, ref_of(datasets))
    assert np.array_equal(volume, phantom.array)


def test_download_series_is_read_by_the_project_reader(conn, stored, tmp_path):
    from slicer_cloud.core import dicom

    phantom, datasets = stored["jpegls"]
    folder = retrieve.download_series(conn, ref_of(datasets), tmp_path)
    series = dicom.find_series(folder)
    assert len(series) == 1
    array, info = dicom.read_series(series[0])
    assert np.array_equal(array, phantom.array)
    assert not [p for p in folder.parent.iterdir() if p.name.endswith(".partial")]


def test_enhanced_multiframe_series(conn):
    import highdicom as hd

    from tests.dicomweb.orthanc import phantom_datasets

    phantom, datasets = phantom_datasets(shape=(48, 40, 16), description="legacy source")
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        legacy_datasets=datasets, series_instance_uid=hd.UID(), series_number=7, sop_instance_uid=hd.UID(), instance_number=1
    )
    enhanced.SeriesDescription = "Enhanced CT"
    conn.client.store_instances([enhanced])
    ref = SeriesRef("orthanc", str(enhanced.StudyInstanceUID), str(enhanced.SeriesInstanceUID))
    volume, info, remote = retrieve.read_volume(conn, ref)
    assert volume.shape == phantom.array.shape
    assert np.array_equal(volume, phantom.array)
    assert info.spacing == pytest.approx(phantom.spacing)
    # a SEG over it references the one enhanced instance and its frames
    labels = np.zeros(remote.shape, np.uint8)
    labels[3:6, 10:20, 10:30] = 1
    seg = segmod.build_seg(labels, remote, [segmod.Segment(1, "Box", (1.0, 0.0, 0.0))])
    back = segmod.seg_on_volume(seg, remote, ref)
    assert np.array_equal(back.labels, labels)


# -- DICOM SEG ---------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["binary", "labelmap"])
def test_seg_round_trip_through_the_server(conn, stored, encoding):
    import highdicom as hd

    phantom, datasets = stored["plain"]
    ref = ref_of(datasets)
    remote = retrieve.describe(conn, ref)
    labels = np.zeros(remote.shape, np.uint8)
    labels[4:9, 20:30, 15:40] = 1
    labels[12:15, 40:50, 40:50] = 2
    segments = [segmod.Segment(1, "Liver", (0.8, 0.3, 0.2), type=("10200004", "SCT", "Liver")),
                segmod.Segment(2, "Lesion", (0.1, 0.8, 0.2))]
    seg = segmod.build_seg(labels, remote, segments, encoding=encoding, description="Painted")
    seg_ref = segmod.store_seg(conn, seg, ref)
    assert seg_ref.study == ref.study and seg_ref.series != ref.series
    listed = {s["series"]: s for s in search.search_series(conn, ref.study)}
    assert listed[seg_ref.series]["modality"] == "SEG"

    stored_seg, source = segmod.referenced_series(conn, seg_ref)
    assert source == ref
    assert isinstance(stored_seg, hd.seg.Segmentation)
    assert stored_seg.FrameOfReferenceUID == datasets[0].FrameOfReferenceUID
    referenced = {str(i.ReferencedSOPInstanceUID) for s in stored_seg.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence}
    assert referenced == {str(ds.SOPInstanceUID) for ds in datasets}
    description = stored_seg.get_segment_description(1)
    assert description.segment_label == "Liver"
    assert description.segmented_property_type.value == "10200004"
    back = segmod.seg_on_volume(stored_seg, remote, seg_ref)
    assert np.array_equal(back.labels, labels)
    assert [s.label for s in back.segments] == ["Liver", "Lesion"]
    assert back.segments[0].color == pytest.approx((0.8, 0.3, 0.2), abs=0.02)


def test_empty_segmentation_is_refused(conn, stored):
    remote = retrieve.describe(conn, ref_of(stored["plain"][1]))
    with pytest.raises(SlicerCloudError, match="empty"):
        segmod.build_seg(np.zeros(remote.shape, np.uint8), remote, [segmod.Segment(1, "A")])


# -- failures ----------------------------------------------------------------------------------
def test_wrong_credentials_say_so(orthanc, stored):
    settings = DicomwebSettings(dicomweb_servers=[orthanc.server("orthanc", password="wrong")])
    conn = Connection(settings.server("orthanc"), settings)
    with pytest.raises(SlicerCloudError, match="refused the credentials.*HTTP 401") as caught:
        search.search_studies(conn)
    assert "wrong" not in caught.value.message and "s3cret" not in caught.value.message


def test_unreachable_server_says_so():
    from tests.dicomweb.orthanc import free_port

    server = DicomwebServer(name="gone", url=f"http://127.0.0.1:{free_port()}/dicom-web")
    settings = DicomwebSettings(dicomweb_servers=[server], dicomweb_timeout_s=5)
    with pytest.raises(SlicerCloudError, match="'gone' cannot be reached") as caught:
        search.search_studies(Connection(server, settings))
    assert "127.0.0.1" not in caught.value.message  # the URL stays on the server side


def test_limits_apply_before_pixels_are_fetched(dw_settings, conn, stored):
    ref = ref_of(stored["plain"][1])
    few_frames = dw_settings.model_copy(update={"dicomweb_max_frames": 10})
    with pytest.raises(SlicerCloudError, match="frames, more than the 10") as caught:
        retrieve.describe(Connection(few_frames.server("orthanc"), few_frames), ref)
    assert caught.value.status == 413
    with pytest.raises(SlicerCloudError) as caught:
        retrieve.describe(conn, ref, Limits(max_voxels=1000))
    assert caught.value.status == 413
    small_replies = dw_settings.model_copy(update={"dicomweb_max_response_bytes": 2000})
    with pytest.raises(SlicerCloudError, match="sent more than") as caught:
        retrieve.describe(Connection(small_replies.server("orthanc"), small_replies), ref)
    assert caught.value.status == 413


class _BadServer:
    """A loopback HTTP server that misbehaves in one way: garbage, a cut reply, or silence."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.5)
        while not self.stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            with client:
                client.recv(65536)
                if self.mode == "garbage":
                    body = b"\x00\xffthis is not json"
                    client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                elif self.mode == "cut":
                    client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\nContent-Length: 100000\r\n\r\n[{\"0020000D\"")
                elif self.mode == "silent":
                    self.stop.wait(10)

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.mark.parametrize("mode,message", [
    ("garbage", "not valid DICOMweb"), ("cut", "stopped sending halfway"), ("silent", "did not answer within 1 s"),
])
def test_misbehaving_server_gives_a_clear_message(mode, message):
    bad = _BadServer(mode)
    try:
        server = DicomwebServer(name="bad", url=f"http://127.0.0.1:{bad.port}/dicom-web")
        settings = DicomwebSettings(dicomweb_servers=[server], dicomweb_timeout_s=1)
        with pytest.raises(SlicerCloudError, match=message):
            search.search_studies(Connection(server, settings))
    finally:
        bad.close()

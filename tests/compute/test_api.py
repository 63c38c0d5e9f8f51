"""The compute API against a real uvicorn server on loopback: every route, the token rules,
bad input and the jobs' life (progress events, cancel, idempotency)."""

from __future__ import annotations

import hashlib
import json

import httpx
import numpy as np
import pytest

from slicer_cloud.client import JobFailed
from slicer_cloud.compute.imageio import read_volume
from slicer_cloud.errors import SlicerCloudError

from .conftest import BOX_ML, BOX_VOXELS, box_volume, pid_alive, wait_for


@pytest.fixture(scope="module")
def http(api):
    with httpx.Client(base_url=api.base, headers=api.headers, timeout=120) as session:
        yield session


@pytest.fixture(scope="module")
def ct_item(client, ct_file):
    return client.upload(ct_file)


@pytest.fixture(scope="module")
def mask_job(client, ct_item):
    return client.run("threshold", {"input": ct_item["id"], "lower": 100, "upper": 1000}, timeout_s=120)


# --- the token --------------------------------------------------------------------------------
def test_health_answers_without_a_token(api):
    answer = httpx.get(api.base + "/api/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}  # liveness only: no address, version or engine


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/items"), ("POST", "/api/items"), ("GET", "/api/items/x"), ("GET", "/api/items/x/file"),
    ("DELETE", "/api/items/x"), ("GET", "/api/items/x/slice.png"), ("GET", "/api/items/x/render.png"),
    ("GET", "/api/modules"), ("GET", "/api/modules/threshold"), ("GET", "/api/modules/threshold/xml"),
    ("GET", "/api/jobs"), ("POST", "/api/jobs"), ("GET", "/api/jobs/x"), ("DELETE", "/api/jobs/x"),
    ("GET", "/api/jobs/x/events"), ("GET", "/api/info"), ("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/docs-assets/swagger-ui.css"),
])
def test_every_other_route_needs_the_token(api, method, path):
    bare = httpx.request(method, api.base + path)
    wrong = httpx.request(method, api.base + path, headers={"Authorization": "Bearer wrong"})
    assert bare.status_code == 401 and wrong.status_code == 401
    assert bare.headers["www-authenticate"].startswith("Bearer")
    assert "token" in bare.json()["detail"]


def test_a_browser_gets_a_cookie_once_then_the_docs(api):
    with httpx.Client(base_url=api.base) as browser:
        first = browser.get(f"/docs?token={api.token}")
        assert first.status_code == 302 and first.headers["location"] == "/docs"
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        page = browser.get("/docs")
        assert page.status_code == 200 and "swagger-ui" in page.text
        assert "cdn." not in page.text  # served from this server, works offline
        assert browser.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
        assert browser.get("/openapi.json").json()["info"]["title"] == "slicer-cloud compute API"


def test_a_cross_site_request_is_refused_even_with_the_token(api):
    answer = httpx.get(api.base + "/api/items", headers={**api.headers, "Origin": "http://elsewhere.example"})
    assert answer.status_code == 403


# --- items ------------------------------------------------------------------------------------
def test_upload_records_geometry_and_hash(ct_item, ct_file):
    assert ct_item["kind"] == "volume" and ct_item["name"] == "box-ct.nrrd"
    assert ct_item["dimensions"] == [64, 64, 40] and ct_item["spacing"] == [0.8, 0.8, 2.0]
    assert ct_item["origin"] == [-25.0, -25.0, -40.0] and ct_item["scalar_type"] == "int16"
    assert ct_item["sha256"] == hashlib.sha256(ct_file.read_bytes()).hexdigest()
    assert ct_item["size"] == ct_file.stat().st_size and ct_item["source"]["type"] == "upload"


def test_get_list_page_and_filter_items(http, client, ct_item):
    assert http.get(f"/api/items/{ct_item['id']}").json() == ct_item
    ids = {item["id"] for item in client.items(page_size=1)}
    assert ct_item["id"] in ids
    page = http.get("/api/items", params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["total"] >= 1
    assert all(i["kind"] == "model" for i in http.get("/api/items", params={"kind": "model"}).json()["items"])
    assert http.get("/api/items", params={"kind": "banana"}).status_code == 422
    assert http.get("/api/items/nope").status_code == 404


@pytest.mark.parametrize("fmt", [None, "nrrd", "nii.gz", "mha"])
def test_download_converts_on_the_fly(client, ct_item, ct_file, tmp_path, fmt):
    suffix = "." + (fmt or "nrrd")
    target = client.download(ct_item["id"], tmp_path / f"back{suffix}", format=fmt)
    if fmt in (None, "nrrd"):
        assert target.read_bytes() == ct_file.read_bytes()
    volume = read_volume(target)
    assert np.array_equal(volume.array, box_volume().array)
    assert np.allclose(volume.origin, box_volume().origin) and np.allclose(volume.spacing, box_volume().spacing)


def test_download_in_an_unknown_format_is_refused(http, ct_item):
    answer = http.get(f"/api/items/{ct_item['id']}/file", params={"format": "jpeg"})
    assert answer.status_code == 422 and "nii.gz" in answer.json()["detail"]


def test_delete_removes_the_item_and_its_file(client, http, ct_file, api):
    item = client.upload(ct_file)
    path = api.data / item["path"]
    assert path.exists()
    assert http.delete(f"/api/items/{item['id']}").status_code == 204
    assert http.get(f"/api/items/{item['id']}").status_code == 404
    assert not path.exists()


def _item_count(http) -> int:
    return http.get("/api/items").json()["total"]


def _upload(http, name: str, content: bytes, **params):
    return http.post("/api/items", files={"file": (name, content)}, params=params)


def test_bad_uploads_get_a_reason_and_leave_nothing(http, api):
    before = _item_count(http)
    too_big = _upload(http, "big.nrrd", b"\0" * (9 * 1024 * 1024))
    assert too_big.status_code == 413 and "limit" in too_big.json()["detail"]
    garbage = _upload(http, "scan.nrrd", b"this is not an image at all")
    assert garbage.status_code == 400 and "scan.nrrd" in garbage.json()["detail"]
    huge = _upload(http, "huge.nrrd", b"NRRD0004\ntype: short\ndimension: 3\nsizes: 4000 4000 4000\nencoding: raw\n\n" + b"\0" * 64)
    assert huge.status_code == 413 and "voxels" in huge.json()["detail"]
    unknown = _upload(http, "notes.xyz", b"hello")
    assert unknown.status_code == 415 and "kind=file" in unknown.json()["detail"]
    not_multipart = http.post("/api/items", content=b"raw bytes", headers={"Content-Type": "application/octet-stream"})
    assert not_multipart.status_code == 415
    no_file = http.post("/api/items", files={"other": ("a.nrrd", b"x")})
    assert no_file.status_code == 422
    assert _item_count(http) == before
    leftovers = [p for p in (api.data / ".slicer-cloud" / "uploads").iterdir()]
    assert leftovers == []
    assert http.get("/api/health").status_code == 200  # and the service keeps serving


def test_any_file_can_be_stored_as_kind_file(http):
    answer = _upload(http, "notes.xyz", b"hello", kind="file")
    assert answer.status_code == 201 and answer.json()["kind"] == "file" and answer.json()["size"] == 5


def test_register_a_path_of_the_data_folder(http, api, ct_file):
    (api.data / "scans").mkdir(exist_ok=True)
    (api.data / "scans" / "ct.nrrd").write_bytes(ct_file.read_bytes())
    item = http.post("/api/items", json={"path": "scans/ct.nrrd"}).json()
    assert item["path"] == "scans/ct.nrrd" and item["source"] == {"type": "path", "path": "scans/ct.nrrd"}
    assert item["dimensions"] == [64, 64, 40]
    assert http.delete(f"/api/items/{item['id']}").status_code == 204
    assert (api.data / "scans" / "ct.nrrd").exists()  # the user's own file is never deleted


@pytest.mark.parametrize("path, status", [("../outside.nrrd", 403), ("/etc/passwd", 403), ("scans/missing.nrrd", 404)])
def test_a_path_outside_the_data_folder_is_refused(http, path, status):
    answer = http.post("/api/items", json={"path": path})
    assert answer.status_code == status and answer.json()["detail"]


def test_register_a_dicom_folder(http, api):
    from slicer_cloud.core.phantom import make_phantom, write_dicom_series

    files = write_dicom_series(api.data / "dicom" / "series1", make_phantom(shape=(32, 32, 12)))
    item = http.post("/api/items", json={"path": "dicom/series1"}).json()
    assert item["kind"] == "volume" and item["dimensions"] == [32, 32, 12] and len(files) == 12
    assert item["source"]["type"] == "path" and item["source"]["dicom_series"]
    assert item["name"].endswith(".nrrd")


# --- modules ----------------------------------------------------------------------------------
def test_modules_are_listed_with_their_parameters(http):
    names = {m["name"]: m for m in http.get("/api/modules").json()}
    assert {"threshold", "segment_statistics", "labelmap_to_model", "sleeper"} <= set(names)
    assert set(names["threshold"]) == {"name", "title", "category", "description"}
    threshold = http.get("/api/modules/threshold").json()
    parameters = {p["name"]: p for p in threshold["parameters"]}
    assert [parameters[n]["channel"] for n in ("input", "lower", "upper", "output")] == ["input", "input", "input", "output"]
    assert parameters["lower"]["type"] == "double" and parameters["lower"]["longflag"] == "--lower"
    assert parameters["input"]["index"] == 0 and parameters["input"]["type"] == "image"
    xml = http.get("/api/modules/threshold/xml")
    assert xml.headers["content-type"].startswith("application/xml") and "<name>lower</name>" in xml.text
    assert http.get("/api/modules/nope").status_code == 404
    assert http.get("/api/modules/nope/xml").status_code == 404


# --- jobs -------------------------------------------------------------------------------------
def test_threshold_then_statistics_gives_the_volume_in_ml(client, mask_job, http):
    assert mask_job["state"] == "succeeded" and mask_job["progress"] == 1.0
    assert mask_job["return_parameters"] == {"voxel_count": BOX_VOXELS}
    mask = http.get(f"/api/items/{mask_job['outputs'][0]}").json()
    assert mask["kind"] == "segmentation" and mask["name"] == "threshold-box-ct.nrrd"
    assert mask["source"] == {"type": "job", "job": mask_job["id"], "module": "threshold", "parameter": "output"}
    stats = client.run("segment_statistics", {"segmentation": mask["id"]}, timeout_s=120)
    assert stats["return_parameters"]["total_volume_ml"] == pytest.approx(BOX_ML)
    assert stats["return_parameters"]["voxel_counts"] == [BOX_VOXELS]
    table = http.get(f"/api/items/{stats['outputs'][0]}").json()
    assert table["kind"] == "table"
    csv_text = http.get(f"/api/items/{table['id']}/file").text
    assert csv_text.splitlines()[0].startswith("label,voxel_count,volume_mm3,volume_ml")


@pytest.mark.parametrize("body, status, message", [
    ({"module": "nope", "parameters": {}}, 404, "Unknown module 'nope'"),
    ({"module": "gaussian_smoothing", "parameters": {"input": "ID", "sigma": -1}}, 422, "'sigma': must be at least 0"),
    ({"module": "threshold", "parameters": {"input": "ID", "lower": "low"}}, 422, "'lower': expects a number"),
    ({"module": "threshold", "parameters": {"input": "ID", "colour": 1}}, 422, "no parameter 'colour'"),
    ({"module": "threshold", "parameters": {}}, 422, "'input' is required"),
    ({"module": "threshold", "parameters": {"input": "missing"}}, 422, "no item with id 'missing'"),
    ({"module": "threshold", "parameters": {"input": "ID", "output": "../x.nrrd"}}, 422, "plain file name"),
    ({"module": "threshold", "parameters": {"input": "ID", "output": "mask.png"}}, 422, "must end with .nrrd"),
    ({"module": "threshold", "parameters": {"input": "TABLE"}}, 422, "takes a volume or segmentation item"),
    ({"parameters": {}}, 422, "module"),
])
def test_bad_job_requests_name_the_parameter_and_the_rule(http, ct_item, body, status, message):
    table = _upload(http, "t.csv", b"a,b\n1,2\n").json()
    text = json.dumps(body).replace('"ID"', json.dumps(ct_item["id"])).replace('"TABLE"', json.dumps(table["id"]))
    answer = http.post("/api/jobs", content=text, headers={"Content-Type": "application/json"})
    assert answer.status_code == status
    assert message in json.dumps(answer.json()["detail"])


def test_a_crashing_module_gives_a_failed_job_with_its_reason(client):
    with pytest.raises(JobFailed) as caught:
        client.run("sleeper", {"mode": "crash"}, timeout_s=60)
    job = caught.value.job
    assert job["state"] == "failed" and job["exit_code"] == 3 and job["outputs"] == []
    assert "exited with code 3" in job["error"] and "something went wrong on purpose" in job["error"]
    assert "about to fail" in job["log_tail"]


def test_progress_streams_as_server_sent_events(client):
    job = client.submit("sleeper", {"seconds": 1.0})
    events = list(client.events(job["id"], timeout_s=60))
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "state" and kinds[-1] == "end"
    progress = [data["progress"] for kind, data in events if kind == "progress" and data["progress"] is not None]
    assert len(progress) >= 5 and progress == sorted(progress) and progress[-1] == 1.0
    assert events[-1][1]["state"] == "succeeded" and events[-1][1]["return_parameters"]["pids"]
    assert client.events(job["id"]).__next__()[1]["state"] == "succeeded"  # a late listener gets the end at once


def test_cancel_ends_the_job_and_its_process_tree(client, http):
    job = client.submit("sleeper", {"seconds": 300, "mode": "child"})
    running = wait_for(lambda: (j := client.job(job["id"]))["state"] == "running" and (j.get("comment") or "").startswith("pids") and j, timeout_s=60)
    pids = [int(p) for p in running["comment"].split()[1:]]
    assert all(pid_alive(p) for p in pids)
    cancelled = client.cancel(job["id"])
    assert cancelled["state"] == "cancelled" and cancelled["outputs"] == []
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout_s=10)
    again = http.delete(f"/api/jobs/{job['id']}")
    assert again.status_code == 409


def test_an_idempotency_key_returns_the_first_job(http, ct_item):
    body = {"module": "threshold", "parameters": {"input": ct_item["id"], "lower": 250}}
    first = http.post("/api/jobs", json=body, headers={"Idempotency-Key": "abc-1"})
    second = http.post("/api/jobs", json=body, headers={"Idempotency-Key": "abc-1"})
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    other = http.post("/api/jobs", json={**body, "parameters": {"input": ct_item["id"], "lower": 1}}, headers={"Idempotency-Key": "abc-1"})
    assert other.status_code == 409
    total = http.get("/api/jobs", params={"module": "threshold"}).json()["total"]
    http.post("/api/jobs", json=body, headers={"Idempotency-Key": "abc-1"})
    assert http.get("/api/jobs", params={"module": "threshold"}).json()["total"] == total


def test_jobs_are_listed_paged_and_filtered(http, mask_job):
    page = http.get("/api/jobs", params={"limit": 1}).json()
    assert len(page["jobs"]) == 1 and page["total"] >= 2
    succeeded = http.get("/api/jobs", params={"state": "succeeded", "limit": 100}).json()["jobs"]
    assert mask_job["id"] in {j["id"] for j in succeeded} and all(j["state"] == "succeeded" for j in succeeded)
    assert http.get(f"/api/jobs/{mask_job['id']}").json()["id"] == mask_job["id"]
    assert http.get("/api/jobs/nope").status_code == 404
    assert http.get("/api/jobs/nope/events").status_code == 404


# --- renders and models -----------------------------------------------------------------------
def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_slice_and_volume_renders_are_pngs(client, http, ct_item):
    axial = client.slice_png(ct_item["id"], size=128)
    assert max(_png_size(axial)) == 128
    coronal = client.slice_png(ct_item["id"], orientation="coronal", index=30, window=400, level=150, size=96)
    assert max(_png_size(coronal)) == 96
    assert http.get(f"/api/items/{ct_item['id']}/slice.png", params={"orientation": "oblique"}).status_code == 422
    rendered = client.render_png(ct_item["id"], preset="CT-Bone", view="left", size=64)
    assert max(_png_size(rendered)) == 64
    with pytest.raises(SlicerCloudError) as caught:
        client.render_png(ct_item["id"], preset="no-such-preset", size=64)
    assert 400 <= caught.value.status < 500


def test_renders_are_for_images_only(http):
    table = _upload(http, "r.csv", b"a\n1\n").json()
    answer = http.get(f"/api/items/{table['id']}/slice.png")
    assert answer.status_code == 422 and "only volumes and segmentations" in answer.json()["detail"]


def test_label_map_to_model_and_model_downloads(client, http, mask_job, tmp_path):
    job = client.run("labelmap_to_model", {"input": mask_job["outputs"][0], "output": "box.stl"}, timeout_s=120)
    model = http.get(f"/api/items/{job['outputs'][0]}").json()
    assert model["kind"] == "model" and model["name"] == "box.stl"
    assert job["return_parameters"]["triangles"] > 100
    obj = http.get(f"/api/items/{model['id']}/file", params={"format": "obj"})
    assert obj.status_code == 200 and obj.text.count("\nv ") > 100
    gltf = http.get(f"/api/items/{model['id']}/file", params={"format": "gltf"})
    assert gltf.status_code == 200 and json.loads(gltf.content)["asset"]["version"] == "2.0"
    assert http.get(f"/api/items/{model['id']}/file", params={"format": "nrrd"}).status_code == 422

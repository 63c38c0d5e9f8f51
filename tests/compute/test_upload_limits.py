"""Upload bodies are bounded as a whole, chunked or not: the number of parts, each part's headers,
each form field and the total; JSON bodies are small. Each refusal says which limit, nothing is
kept, and the API keeps serving."""

from __future__ import annotations

import httpx
import pytest

BOUNDARY = "slicer-cloud-test-boundary"


def _part(name: str, body: bytes, *, filename: str | None = None, extra_header: str = "") -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{extra_header}\r\n".encode()
    return head + body + b"\r\n"


def _body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def _chunked(data: bytes, size: int = 64 * 1024):
    """The body as an iterator: httpx sends it with Transfer-Encoding: chunked, no length."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.fixture(scope="module")
def http(api):
    with httpx.Client(base_url=api.base, headers=api.headers, timeout=120) as session:
        yield session


def _post(http, body, *, chunked: bool):
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return http.post("/api/items", content=_chunked(body) if chunked else body, headers=headers)


def _assert_nothing_kept(http, api, before: int) -> None:
    assert http.get("/api/items").json()["total"] == before
    assert list((api.data / ".slicer-cloud" / "uploads").glob("*")) == []
    assert http.get("/api/health").status_code == 200


@pytest.mark.parametrize("chunked", [False, True], ids=["with-length", "chunked"])
def test_too_many_parts_are_refused(http, api, chunked):
    before = http.get("/api/items").json()["total"]
    fields = [_part(f"f{n}", b"x") for n in range(5000)]
    reply = _post(http, _body(*fields, _part("file", b"a,b\n1,2\n", filename="t.csv")), chunked=chunked)
    assert reply.status_code == 400 and "more than 16 parts" in reply.json()["detail"]
    _assert_nothing_kept(http, api, before)


@pytest.mark.parametrize("chunked", [False, True], ids=["with-length", "chunked"])
def test_a_large_form_field_is_refused_not_kept(http, api, chunked):
    before = http.get("/api/items").json()["total"]
    body = _body(_part("kind", b"k" * (6 * 1024 * 1024)), _part("file", b"a,b\n1,2\n", filename="t.csv"))
    reply = _post(http, body, chunked=chunked)
    assert reply.status_code == 400 and "longer than 4096 bytes" in reply.json()["detail"]
    _assert_nothing_kept(http, api, before)


def test_huge_part_headers_are_refused(http, api):
    before = http.get("/api/items").json()["total"]
    header = "X-Padding: " + "p" * (4 * 1024 * 1024) + "\r\n"
    body = _body(_part("file", b"a,b\n1,2\n", filename="t.csv", extra_header=header))
    reply = _post(http, body, chunked=True)
    assert reply.status_code == 400 and "headers" in reply.json()["detail"]
    _assert_nothing_kept(http, api, before)


def test_a_chunked_body_past_the_total_limit_is_refused(http, api):
    # a small file, then bytes after the closing boundary that no part holds: still counted
    before = http.get("/api/items").json()["total"]
    body = _body(_part("file", b"a,b\n1,2\n", filename="t.csv")) + b"e" * (12 * 1024 * 1024)
    reply = _post(http, body, chunked=True)
    assert reply.status_code == 413 and "limit" in reply.json()["detail"]
    _assert_nothing_kept(http, api, before)


def test_json_bodies_are_small(http):
    big = b'{"path": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    for content in (big, _chunked(big)):
        reply = http.post("/api/items", content=content, headers={"Content-Type": "application/json"})
        assert reply.status_code == 413
    reply = http.post("/api/jobs", content=_chunked(big), headers={"Content-Type": "application/json"})
    assert reply.status_code == 413
    assert http.get("/api/health").status_code == 200

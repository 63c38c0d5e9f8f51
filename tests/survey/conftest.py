from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.survey.forum import FakeDiscourse, serve, synthetic_topics


@pytest.fixture
def fake_forum() -> Iterator[tuple[FakeDiscourse, str]]:
    """A loopback Discourse answering recorded-style JSON for the synthetic topics."""
    fake = FakeDiscourse({item["id"]: item for item in synthetic_topics()})
    server, thread = serve(fake)
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

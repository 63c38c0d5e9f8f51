"""The gateway's websocket proxy bounds what a browser may send: a message over the limit
closes that socket with 1009 and a reason; the session and the gateway go on."""

from __future__ import annotations

import asyncio

import aiohttp
import requests

from tests.conftest import run_async

LIMIT = 1024 * 1024


async def _send(ws_url: str, payload: bytes) -> tuple[int | None, str]:
    """Send one message; what the gateway answers: the close code and reason (or None)."""
    async with aiohttp.ClientSession() as client:
        async with client.ws_connect(ws_url, headers={"Authorization": "Bearer t"}, max_msg_size=0) as ws:
            await ws.send_bytes(payload)
            try:
                while True:
                    message = await asyncio.wait_for(ws.receive(), 60)
                    if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        return ws.close_code, str(message.extra or "")
            except asyncio.TimeoutError:
                return None, "still open"


async def _still_open(ws_url: str) -> bool:
    async with aiohttp.ClientSession() as client:
        async with client.ws_connect(ws_url, headers={"Authorization": "Bearer t"}) as ws:
            return not ws.closed


def test_an_oversized_message_closes_the_socket_with_a_reason(service_factory, tmp_path):
    service = service_factory(
        ["view", "--data", str(tmp_path), "--port", "0", "--token", "t", "--no-open"],
        env={"SLICER_CLOUD_SPARE_SESSIONS": "0", "SLICER_CLOUD_MAX_WS_MESSAGE_BYTES": str(LIMIT)},
    )
    location = requests.get(service.base, headers={"Authorization": "Bearer t"}, timeout=120, allow_redirects=False)
    assert location.status_code == 302
    session_id = location.headers["Location"].split("/s/")[1].split("/")[0]
    ws_url = service.base.replace("http://", "ws://") + f"s/{session_id}/ws"

    code, reason = run_async(_send(ws_url, b"\0" * (2 * LIMIT)))
    assert code == 1009, (code, reason)
    assert "larger than the limit of 1 MiB" in reason

    # the session was not harmed: a new socket to it opens, and the gateway answers
    assert run_async(_still_open(ws_url))
    assert requests.get(service.base + "api/health", timeout=10).json()["sessions"] == 1

"""Entry point of one viewer session process (started by the gateway, never by users).

The gateway talks to it over stdin (one JSON command per line) and learns that it is ready from
a marker line on stdout. When stdin closes (the gateway stopped or died) the process exits, so a
session can never outlive its gateway. The trame server listens on 127.0.0.1 and only accepts
websocket clients that present this session's secret, which only the gateway knows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import threading
from pathlib import Path

READY_MARKER = "@@slicer-cloud-session-ready@@"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="slicer_cloud.viewer.session")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--auth-key-file", required=True)
    parser.add_argument("--gateway-base", default="/")
    parser.add_argument("--settings", required=True, help="ViewerSettings as JSON")
    parser.add_argument("--limits", required=True, help="Limits as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    from slicer_cloud.logs import setup_logging

    # trame's template compiler logs every token at INFO (megabytes per session start): the
    # one set-up keeps it for --log-level debug.
    setup_logging(tag=f"session {Path(args.auth_key_file).stem}")
    # trame parses its own options from TRAME_ARGS only, never from our argv.
    os.environ["TRAME_ARGS"] = f"--authKeyFile {args.auth_key_file} --server"

    from trame.app import get_server

    from slicer_cloud.config import Limits, ViewerSettings
    from slicer_cloud.viewer.app import ViewerApp

    settings = ViewerSettings.model_validate_json(args.settings)
    limits = Limits.model_validate_json(args.limits)
    server = get_server(None, client_type="vue3")
    app = ViewerApp(server, settings=settings, limits=limits, gateway_base=args.gateway_base)

    def on_ready(**_):
        loop = asyncio.get_running_loop() if _has_running_loop() else asyncio.get_event_loop()
        threading.Thread(target=_read_commands, args=(app, loop), daemon=True).start()
        print(READY_MARKER, flush=True)

    server.controller.on_server_ready.add(on_ready)
    server.start(
        port=args.port,
        host="127.0.0.1",
        open_browser=False,
        show_connection_info=False,
        timeout=0,
        disable_logging=True,
    )


def _has_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


def _read_commands(app, loop: asyncio.AbstractEventLoop) -> None:
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            command = json.loads(line)
        except json.JSONDecodeError:
            logging.warning("ignoring a malformed command")
            continue
        asyncio.run_coroutine_threadsafe(_run_command(app, command), loop)
    # The gateway is gone: nobody can reach this session any more.
    os._exit(0)


async def _run_command(app, command: dict) -> None:
    kind = command.get("cmd")
    if kind == "open":
        for item in command.get("items", []):
            if item.get("trusted"):
                path = Path(item["path"])
                ok = await app.open_async(path, label=item.get("label") or path.name)
            else:
                ok = await app.open_relative(item["path"])
            if not ok:
                break
    else:
        logging.warning("unknown command %r", kind)


if __name__ == "__main__":
    main()

"""The compute API behind a path prefix (``<base_url>slicer-api/``).

jupyter-server-proxy strips the prefix before forwarding, so the API's routes match as they
are; what must know the prefix is what the browser sees: the OpenAPI page (its script, style
and schema URLs), the schema's ``servers`` entry ("Try it out" sends requests there) and
``Location`` headers. This wrapper sets the ASGI ``root_path`` (FastAPI puts it in ``servers``),
serves the OpenAPI page with prefixed URLs, and prefixes absolute ``Location`` headers.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_ASSETS = "/docs-assets"  # where the compute API mounts Swagger UI's files


class PrefixedApi:
    def __init__(self, app: ASGIApp, *, prefix: str):
        self.app = app
        self.root_path = "/" + prefix.strip("/") if prefix.strip("/") else ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.root_path:
            await self.app(scope, receive, send)
            return
        is_docs = scope["type"] == "http" and scope["path"] == "/docs" and scope.get("method") in ("GET", "HEAD")
        # ASGI: ``path`` includes ``root_path``; Starlette's routing and static files strip it.
        scope = dict(scope, root_path=self.root_path, path=self.root_path + scope["path"],
                     raw_path=self.root_path.encode() + scope.get("raw_path", scope["path"].encode()))
        if is_docs:
            await self._docs(scope, receive, send)
            return

        async def send_prefixed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = []
                for key, value in message.get("headers", []):
                    if key.lower() == b"location" and value.startswith(b"/") and not value.startswith(b"//"):
                        value = self.root_path.encode("latin-1") + value
                    headers.append((key, value))
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, send_prefixed)

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The API's own page names its files from "/"; the token check still runs first.
        from fastapi.openapi.docs import get_swagger_ui_html

        page = get_swagger_ui_html(
            openapi_url=f"{self.root_path}/openapi.json",
            title="slicer-cloud compute API",
            swagger_js_url=f"{self.root_path}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{self.root_path}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{self.root_path}{DOCS_ASSETS}/favicon-32x32.png",
        )
        allowed = False

        async def probe(message: Message) -> None:
            # Let the API answer /docs first: its middleware refuses a request without the token.
            nonlocal allowed
            if message["type"] == "http.response.start":
                allowed = message["status"] < 400
                if not allowed:
                    await send(message)
            elif not allowed:
                await send(message)

        await self.app(scope, receive, probe)
        if allowed:
            await page(scope, receive, send)

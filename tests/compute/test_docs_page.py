"""The OpenAPI page in a real headless Chromium: the token once in the URL, then the cookie;
Swagger UI is served by the API itself (no CDN) and lists the routes."""

from __future__ import annotations

import pytest


@pytest.mark.e2e
def test_docs_page_renders_the_routes_in_a_browser(api, browser):
    page = browser.new_page()
    try:
        page.goto(f"{api.base}/docs?token={api.token}")
        assert page.url == f"{api.base}/docs"  # the token left the address bar
        page.wait_for_selector("#operations-jobs-submit_job_api_jobs_post", timeout=30_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert "/api/jobs" in [p.strip() for p in paths] and len(paths) >= 15
        cookies = page.context.cookies()
        assert any(c["httpOnly"] and c["sameSite"] == "Strict" for c in cookies)
    finally:
        page.close()

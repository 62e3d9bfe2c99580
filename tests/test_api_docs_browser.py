"""The API docs work offline: Swagger UI (/api/docs/) and ReDoc (/api/redoc/) come
from the project's own static files (drf-spectacular-sidecar). In a real browser
(Debian's Chromium through Playwright) every request not to the test server is
blocked, and the pages still render the API's operations."""

import os

import pytest

REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def offline(page, server_url: str) -> list[str]:
    """Block every request that leaves the server; return the list of those blocked."""
    blocked: list[str] = []

    def route(route):
        url = route.request.url
        if url.startswith(server_url) or url.startswith("data:") or url.startswith("blob:"):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", route)
    return blocked


@pytest.mark.django_db(transaction=True)
def test_swagger_ui_renders_the_operations_offline(live_server, browser_page, output_dir):
    page = browser_page
    blocked = offline(page, live_server.url)

    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    page.screenshot(path=os.path.join(output_dir, "swagger-offline.png"), full_page=False)

    assert "/api/v1/customers/{external_id}/check" in [p.replace("\u200b", "") for p in paths]
    assert len(paths) > 40
    assert blocked == []


@pytest.mark.django_db(transaction=True)
def test_redoc_renders_the_operations_offline(live_server, browser_page, output_dir):
    page = browser_page
    blocked = offline(page, live_server.url)

    page.goto(f"{live_server.url}/api/redoc/")
    operations = "[data-section-id^='operation/']"
    page.wait_for_selector(operations, state="attached", timeout=30_000)
    page.screenshot(path=os.path.join(output_dir, "redoc-offline.png"), full_page=False)

    assert page.locator(operations).count() > 40
    assert page.get_by_text("/api/v1/customers/{external_id}/check").count() >= 1
    # ReDoc's footer shows Redocly's logo from their CDN, hidden when it cannot load;
    # it is the one request ReDoc makes outside the server (no fonts, no script).
    assert [url for url in blocked if url != REDOCLY_LOGO] == []

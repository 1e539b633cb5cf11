"""Pages through Flask's test client: headers, assets, and the dashboard's 404 without a key."""

from __future__ import annotations

import os

from facade import create_app
from facade.config import parse_config
from facade.settings import Settings
from tests.support import ADMIN_KEY, upstream_env


def test_index_answers_json_for_clients_and_html_for_browsers(client):
    data = client.get("/").get_json()
    assert data["docs"] == "/docs" and data["dashboard"] == "/dashboard"
    assert (data["health"], data["ready"], data["openapi"]) == (
        "/healthz",
        "/readyz",
        "/openapi.json",
    )
    html = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert html.mimetype == "text/html" and b'href="/docs"' in html.data
    assert "default-src 'self'" in html.headers["Content-Security-Policy"]


def test_docs_page_and_its_assets_come_from_here(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["X-Frame-Options"] == "DENY"
    assert b"http://" not in page.data and b"https://" not in page.data
    assert b"<script>" not in page.data, "no inline script: the CSP allows none"
    for path, text in [
        ("/docs/assets/swagger-ui-bundle.js", b"SwaggerUIBundle"),
        ("/docs/assets/swagger-ui.css", b".swagger-ui"),
        ("/static/docs.js", b"SwaggerUIBundle"),
    ]:
        with client.get(path) as asset:  # a file response: close it
            assert asset.status_code == 200 and text in asset.data, path
    assert client.get("/docs/assets/../../facade/settings.py").status_code == 404
    assert client.get("/docs/assets/index.html").status_code == 404


def test_dashboard_is_404_without_an_admin_key(client, config_dict, tmp_path):
    assert client.get("/dashboard").status_code == 404  # the fixture app has no admin key
    config = parse_config(config_dict, environ={**os.environ, **upstream_env()})
    settings = Settings.from_env(
        {}, database_url=f"sqlite:///{tmp_path}/admin.db", admin_key=ADMIN_KEY
    )
    app = create_app(config, settings)
    try:
        page = app.test_client().get("/dashboard")
        assert page.status_code == 200 and b'data-api="/api/v1/admin"' in page.data
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    finally:
        app.facade_close()

"""Guards around the API (Flask's test client): security headers, the metrics token, the
admin authentication throttle, and printable key names and labels."""

from __future__ import annotations

import os

import pytest

from facade import create_app
from facade.config import parse_config
from facade.settings import Settings
from tests.support import ADMIN_KEY, admin_headers, upstream_env

KEYS = "/api/v1/admin/keys"
METRICS_TOKEN = "metrics-SECRET-7c1d9e0f2a3b"


@pytest.fixture
def settings(tmp_path):
    return Settings.from_env(
        {},
        database_url=f"sqlite:///{tmp_path}/facade.db",
        admin_key=ADMIN_KEY,
        metrics_token=METRICS_TOKEN,
    )


def test_every_answer_says_nosniff_and_html_pages_get_a_strict_policy(client, auth):
    chat = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    answers = [
        client.get("/healthz"),
        client.get("/api/v1/models", headers=auth),
        client.get("/api/v1/models"),  # 401
        client.get("/no/such/path"),  # 404
        client.put("/healthz"),  # 405
        # Read to its end: an unread stream keeps its upstream socket until it is collected,
        # and a socket collected open warns (an error here) in whichever test runs then.
        client.post(
            "/api/v1/chat/completions", json={**chat, "stream": True}, headers=auth, buffered=True
        ),
        client.get("/openapi.json"),
    ]
    for resp in answers:
        assert resp.headers["X-Content-Type-Options"] == "nosniff", resp.request.path
        assert "Content-Security-Policy" not in resp.headers or resp.mimetype == "text/html"
    for path in ("/docs", "/dashboard", "/"):
        resp = client.get(path, headers={"Accept": "text/html"})
        assert resp.status_code == 200 and resp.mimetype == "text/html", path
        policy = resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "http" not in policy
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_metrics_need_the_token_when_one_is_set(client):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}):
        resp = client.get("/metrics", headers=headers)
        assert resp.status_code == 401, headers
        assert METRICS_TOKEN not in resp.get_data(as_text=True)
    resp = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert resp.status_code == 200 and b"facade_requests_total" in resp.data


def test_metrics_are_open_without_a_token(config_dict, tmp_path):
    config = parse_config(config_dict, environ={**os.environ, **upstream_env()})
    app = create_app(config, Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/m.db"))
    try:
        assert app.test_client().get("/metrics").status_code == 200
    finally:
        app.facade_close()


def test_failed_admin_authentications_are_throttled_and_counted(client):
    wrong = admin_headers("adm-wrong-0000000000000000000000000000")
    codes = [client.get(KEYS, headers=wrong).status_code for _ in range(30)]
    assert codes[:10] == [401] * 10
    assert codes[-1] == 429 and set(codes) == {401, 429}
    resp = client.get(KEYS, headers=wrong)
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    assert resp.get_json()["data"]["error"]["type"] == "rate_limit_exceeded"
    # While the bucket is empty even the right key waits: a guesser learns nothing.
    assert client.get(KEYS, headers=admin_headers()).status_code == 429
    scrape = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    text = scrape.get_data(as_text=True)
    assert 'facade_admin_auth_failures_total{outcome="refused"}' in text
    assert 'facade_admin_auth_failures_total{outcome="throttled"}' in text


@pytest.mark.parametrize(
    "fields, param",
    [
        ({"name": "ok\n\u001b[2Jforged line"}, "name"),
        ({"name": "bell\u0007"}, "name"),
        ({"name": "rtl\u202eevil"}, "name"),
        ({"name": "fine", "metadata": {"team": "a\u001b[31m"}}, "metadata"),
        ({"name": "fine", "metadata": {"a\nb": "x"}}, "metadata"),
        ({"name": "fine", "metadata": {"nested": {"deep": ["\u009b"]}}}, "metadata"),
    ],
)
def test_names_and_labels_with_control_characters_are_400s(client, fields, param):
    resp = client.post(KEYS, json={"models": ["*"], **fields}, headers=admin_headers())
    body = resp.get_json()
    assert resp.status_code == 400, body
    assert body["data"]["error"]["param"] == param
    assert "printable" in body["message"]


def test_printable_unicode_names_are_fine(client):
    resp = client.post(
        KEYS, json={"name": "équipe 数据 🚀", "metadata": {"owner": "Zoë"}}, headers=admin_headers()
    )
    assert resp.status_code == 201, resp.get_json()
    key_id = resp.get_json()["data"]["id"]
    resp = client.patch(f"{KEYS}/{key_id}", json={"name": "x\ty"}, headers=admin_headers())
    assert resp.status_code == 400 and resp.get_json()["data"]["error"]["param"] == "name"

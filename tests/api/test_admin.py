"""The admin API through Flask's test client: keys, usage, auth, and strict bodies."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from facade import create_app
from facade.config import parse_config
from facade.settings import Settings
from tests.support import ADMIN_KEY, TEAM_KEY, admin_headers, chat_body, upstream_env

KEYS = "/api/v1/admin/keys"
CHAT = "/api/v1/chat/completions"
ADMIN = admin_headers()


@pytest.fixture
def settings(tmp_path):
    return Settings.from_env(
        {}, database_url=f"sqlite:///{tmp_path}/facade.db", admin_key=ADMIN_KEY
    )


def create(client, **fields) -> dict:
    resp = client.post(KEYS, json={"name": "team-a", "models": ["*"], **fields}, headers=ADMIN)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["data"]


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_admin_routes_are_404_without_an_admin_key(config_dict, tmp_path):
    config = parse_config(config_dict, environ={**os.environ, **upstream_env()})
    app = create_app(config, Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/x.db"))
    try:
        client = app.test_client()
        for method, path in [
            ("get", KEYS),
            ("post", KEYS),
            ("get", f"{KEYS}/key-1"),
            ("patch", f"{KEYS}/key-1"),
            ("delete", f"{KEYS}/key-1"),
            ("post", f"{KEYS}/key-1/rotate"),
            ("get", "/api/v1/admin/usage"),
        ]:
            resp = getattr(client, method)(path, headers=ADMIN, json={})
            body = resp.get_json()
            assert resp.status_code == 404 and body["code"] == "404", (method, path)
            assert body["success"] is False and body["data"]["request_id"]
    finally:
        app.facade_close()


def test_create_answers_201_with_the_plaintext_once(client):
    data = create(client, rpm=600, budget_usd=100, budget_period="monthly")
    assert data["id"].startswith("key-") and data["prefix"] == data["key"][:8]
    assert data["source"] == "store" and data["rpm"] == 600 and data["spend_usd"] == 0
    resp = client.post(KEYS, json={"name": "x"}, headers=ADMIN)
    body = resp.get_json()
    assert (resp.status_code, body["code"], body["success"]) == (201, "201", True)
    listed = client.get(KEYS, headers=ADMIN).get_json()["data"]["data"]
    assert data["key"] not in str(listed) and "key_hash" not in str(listed)
    one = client.get(f"{KEYS}/{data['id']}", headers=ADMIN).get_json()["data"]
    assert "key" not in one and one["prefix"] == data["prefix"]


def test_a_created_key_works_for_chat_within_its_models(client, fake):
    data = create(client, models=["gpt-test"])
    resp = client.post(CHAT, json=chat_body("hi"), headers=bearer(data["key"]))
    assert resp.status_code == 200
    resp = client.post(CHAT, json=chat_body("hi", model="sim-model"), headers=bearer(data["key"]))
    assert resp.status_code == 403
    models = client.get("/api/v1/models", headers=bearer(data["key"])).get_json()["data"]["data"]
    assert [m["id"] for m in models] == ["gpt-test"]


def test_the_admin_key_is_no_chat_key_and_a_chat_key_no_admin_key(client, fake):
    resp = client.post(CHAT, json=chat_body("hi"), headers=ADMIN)
    assert resp.status_code == 401 and resp.get_json()["data"]["error"]["type"] == (
        "authentication_error"
    )
    chat_key = create(client)["key"]
    for key in (TEAM_KEY, chat_key, "wrong"):
        resp = client.get(KEYS, headers=bearer(key))
        assert resp.status_code == 401, key
    assert client.get(KEYS).status_code == 401
    assert fake.requests() == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "a", "colour": "red"}, "colour"),
        ({"name": "a", "budget_usd": -1}, "budget_usd"),
        ({"name": "a", "budget_period": "yearly"}, "budget_period"),
        ({"name": "a", "rpm": "600"}, "rpm"),
        ({"name": "a", "rpm": 0}, "rpm"),
        ({"name": "a", "tpm": 1.5}, "tpm"),
        ({"name": "a", "budget_usd": "5"}, "budget_usd"),
        ({"name": "a", "models": "*"}, "models"),
        ({"name": "a", "models": ["ghost"]}, "models[0]"),
        ({"name": "a", "expires_at": "next week"}, "expires_at"),
        ({"name": "a", "expires_at": 1700000000}, "expires_at"),
        ({"name": "a", "metadata": ["team"]}, "metadata"),
        ({"name": ""}, "name"),
        ({"models": ["*"]}, "name"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(client, body, param):
    resp = client.post(KEYS, json=body, headers=ADMIN)
    out = resp.get_json()
    assert resp.status_code == 400 and out["code"] == "400", out
    assert out["data"]["error"] == {"type": "invalid_request_error", "param": param}
    assert param.split("[")[0] in out["message"]


def test_bad_patch_and_usage_queries_are_400_naming_the_field(client):
    key_id = create(client)["id"]
    for body, param in [({"budget_usd": -5}, "budget_usd"), ({"id": "x"}, "id")]:
        resp = client.patch(f"{KEYS}/{key_id}", json=body, headers=ADMIN)
        assert resp.status_code == 400 and resp.get_json()["data"]["error"]["param"] == param
    for query, param in [("from=2026-13-01", "from"), ("to=soon", "to"), ("bogus=1", "bogus")]:
        resp = client.get(f"/api/v1/admin/usage?{query}", headers=ADMIN)
        assert resp.status_code == 400 and resp.get_json()["data"]["error"]["param"] == param
    resp = client.get("/api/v1/admin/usage?from=2026-02-02&to=2026-02-01", headers=ADMIN)
    assert resp.status_code == 400 and resp.get_json()["data"]["error"]["param"] == "from"


def test_patch_rotate_and_revoke(client, fake):
    data = create(client, rpm=5)
    path = f"{KEYS}/{data['id']}"
    changes = {
        "name": "team-b",
        "rpm": None,
        "tpm": 1000,
        "models": ["gpt-test"],
        "budget_usd": 2.5,
        "budget_period": "daily",
        "metadata": {"team": "search", "owner": "ana"},
    }
    patched = client.patch(path, json=changes, headers=ADMIN).get_json()["data"]
    assert {k: patched[k] for k in changes} == changes
    rotated = client.post(f"{path}/rotate", headers=ADMIN).get_json()["data"]
    assert rotated["id"] == data["id"] and rotated["key"] != data["key"]
    assert client.post(CHAT, json=chat_body("hi"), headers=bearer(data["key"])).status_code == 401
    # With tpm 1000 a request names its cap: without one it may use the model's 4096.
    capped = chat_body("hi", max_tokens=16)
    assert client.post(CHAT, json=capped, headers=bearer(rotated["key"])).status_code == 200
    revoked = client.delete(path, headers=ADMIN)
    assert revoked.status_code == 200 and revoked.get_json()["data"]["revoked_at"]
    resp = client.post(CHAT, json=chat_body("hi"), headers=bearer(rotated["key"]))
    assert resp.status_code == 401 and "revoked" in resp.get_json()["message"]
    assert client.get(path, headers=ADMIN).status_code == 404
    assert client.delete(path, headers=ADMIN).status_code == 404
    ids = [k["id"] for k in client.get(KEYS, headers=ADMIN).get_json()["data"]["data"]]
    assert data["id"] not in ids
    ids = [
        k["id"]
        for k in client.get(f"{KEYS}?include_revoked=true", headers=ADMIN).get_json()["data"][
            "data"
        ]
    ]
    assert data["id"] in ids


def test_expiry_is_enforced_and_can_be_moved(client, fake):
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    data = create(client, expires_at=past)
    resp = client.post(CHAT, json=chat_body("hi"), headers=bearer(data["key"]))
    assert resp.status_code == 401 and "expired" in resp.get_json()["message"]
    later = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat()  # UTC
    client.patch(f"{KEYS}/{data['id']}", json={"expires_at": later}, headers=ADMIN)
    assert client.post(CHAT, json=chat_body("hi"), headers=bearer(data["key"])).status_code == 200


def test_config_keys_are_listed_read_only(client):
    listed = client.get(KEYS, headers=ADMIN).get_json()["data"]["data"]
    config_keys = [k for k in listed if k["source"] == "config"]
    assert {k["name"] for k in config_keys} == {"team", "other"}
    team = next(k for k in config_keys if k["name"] == "team")
    assert team["prefix"] == TEAM_KEY[:8] and TEAM_KEY not in str(listed)
    path = f"{KEYS}/{team['id']}"
    assert client.get(path, headers=ADMIN).get_json()["data"]["name"] == "team"
    for resp in (
        client.patch(path, json={"rpm": 1}, headers=ADMIN),
        client.delete(path, headers=ADMIN),
        client.post(f"{path}/rotate", headers=ADMIN),
    ):
        assert resp.status_code == 400 and "config file" in resp.get_json()["message"]


def test_usage_report_rows_and_spend(app, client, fake):
    data = create(client, budget_usd=1, budget_period="daily")
    for text in ("one two [[fake tokens=4]]", "three [[fake tokens=6]]"):
        resp = client.post(CHAT, json=chat_body(text), headers=bearer(data["key"]))
        assert resp.status_code == 200
    client.post(
        CHAT, json=chat_body("x [[fake tokens=2]]", model="sim-model"), headers=bearer(TEAM_KEY)
    )
    app.extensions["facade"].accounting.flush()
    today = datetime.now(UTC).date().isoformat()
    resp = client.get(f"/api/v1/admin/usage?from={today}&to={today}", headers=ADMIN)
    assert resp.status_code == 200
    rows = resp.get_json()["data"]["rows"]
    mine = [r for r in rows if r["key_id"] == data["id"]]
    # The fake counts prompt words: "one two [[fake tokens=4]]" is 4 words, the other 3.
    assert mine == [
        {
            "day": today,
            "key_id": data["id"],
            "key_name": "team-a",
            "model": "gpt-test",
            "requests": 2,
            "input_tokens": 7,
            "cached_input_tokens": 0,
            "output_tokens": 10,
            "cost_usd": pytest.approx((7 * 1.0 + 10 * 2.0) / 1e6),
            "cache_hits": 0,
        }
    ]
    assert any(r["key_name"] == "team" and r["model"] == "sim-model" for r in rows)
    only = client.get(f"/api/v1/admin/usage?key_id={data['id']}&model=sim-model", headers=ADMIN)
    assert only.get_json()["data"]["rows"] == []
    view = client.get(f"{KEYS}/{data['id']}", headers=ADMIN).get_json()["data"]
    assert view["spend_usd"] == pytest.approx(27e-6) and view["reserved_usd"] == 0
    assert view["period_start"] == today


def test_model_report_counts_errors_and_percentiles(app, client, fake):
    for text in ("a [[fake tokens=3]]", "b [[fake tokens=3]]", "c [[fake tokens=3]]"):
        assert client.post(CHAT, json=chat_body(text), headers=bearer(TEAM_KEY)).status_code == 200
    failed = client.post(
        CHAT, json=chat_body("d [[fake status=500]]"), headers=bearer(TEAM_KEY)
    ).status_code
    assert failed == 502
    stream = client.post(
        CHAT, json=chat_body("e", model="sim-model", stream=True), headers=bearer(TEAM_KEY)
    )
    assert b"[DONE]" in stream.get_data()
    app.extensions["facade"].accounting.flush()
    resp = client.get("/api/v1/admin/usage/models", headers=ADMIN)
    assert resp.status_code == 200
    rows = {r["model"]: r for r in resp.get_json()["data"]["rows"]}
    gpt, sim = rows["gpt-test"], rows["sim-model"]
    assert (gpt["requests"], gpt["errors"], gpt["error_rate"]) == (4, 1, 0.25)
    assert 0 < gpt["latency_p50_s"] <= gpt["latency_p95_s"]
    assert 0 < gpt["ttft_p50_s"] <= gpt["latency_p95_s"]
    assert (sim["requests"], sim["errors"]) == (1, 0)
    assert 0 < sim["ttft_p50_s"] < sim["latency_p50_s"], "a stream's first token comes first"
    # Admin only; a bad range names the field.
    assert client.get("/api/v1/admin/usage/models", headers=bearer(TEAM_KEY)).status_code == 401
    bad = client.get("/api/v1/admin/usage/models?from=2026-02-01&to=2026-01-01", headers=ADMIN)
    assert bad.status_code == 400 and bad.get_json()["data"]["error"]["param"] == "from"
    typo = client.get("/api/v1/admin/usage/models?form=2026-01-01", headers=ADMIN)
    assert typo.status_code == 400 and typo.get_json()["data"]["error"]["param"] == "form"


def test_max_parallel_is_a_key_field(client):
    data = create(client, max_parallel=3)
    assert data["max_parallel"] == 3
    got = client.get(f"{KEYS}/{data['id']}", headers=ADMIN).get_json()["data"]
    assert got["max_parallel"] == 3
    patched = client.patch(f"{KEYS}/{data['id']}", json={"max_parallel": None}, headers=ADMIN)
    assert patched.status_code == 200 and patched.get_json()["data"]["max_parallel"] is None
    for bad in (0, "3", 2.5):
        resp = client.post(KEYS, json={"name": "x", "max_parallel": bad}, headers=ADMIN)
        assert resp.status_code == 400, bad
        assert resp.get_json()["data"]["error"]["param"] == "max_parallel"
    listed = client.get(KEYS, headers=ADMIN).get_json()["data"]["data"]
    assert all("max_parallel" in view for view in listed)  # config keys too

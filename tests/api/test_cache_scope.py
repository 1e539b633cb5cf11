"""Who shares cache entries: `scope: global` for every key, `cache: true` on a model."""

from __future__ import annotations

import uuid

import pytest

from tests.support import OTHER_KEY, TEAM_KEY, chat_body

CHAT = "/api/v1/chat/completions"


@pytest.fixture
def config_dict(fake, request):
    from tests.support import base_config

    config = base_config(fake.url)
    config["cache"] = {"ttl_s": 60, "max_entries": 10, **getattr(request, "param", {})}
    for model in config["models"]:
        model["cache"] = model["name"] in ("gpt-test", "secret-model")  # for every key
    return config


def post(client, body: dict, key: str):
    rid = uuid.uuid4().hex
    resp = client.post(
        CHAT, json=body, headers={"Authorization": f"Bearer {key}", "X-Request-ID": rid}
    )
    return resp, rid


def test_a_cached_model_is_cached_per_key(client, fake):
    body = chat_body(uuid.uuid4().hex)
    for key in (TEAM_KEY, OTHER_KEY):
        resp, rid = post(client, body, key)
        assert resp.headers["X-Cache"] == "miss" and fake.requests(rid)
        resp, rid = post(client, body, key)
        assert resp.headers["X-Cache"] == "hit" and not fake.requests(rid)
    # A model without `cache` on, for a key without it: the cache does not apply at all.
    resp, _ = post(client, chat_body("x", model="sim-model"), TEAM_KEY)
    assert resp.status_code == 200 and "X-Cache" not in resp.headers
    assert resp.get_json()["data"]["metrics"]["cache_hit"] is False


@pytest.mark.parametrize("config_dict", [{"scope": "global"}], indirect=True)
def test_global_scope_shares_entries_between_keys(client, fake):
    body = chat_body(uuid.uuid4().hex)
    resp, rid = post(client, body, TEAM_KEY)
    assert resp.headers["X-Cache"] == "miss"
    resp, rid = post(client, body, OTHER_KEY)
    assert resp.headers["X-Cache"] == "hit" and not fake.requests(rid)
    # Sharing never reaches past a key's models: `other` may not use secret-model.
    secret = chat_body("s", model="secret-model")
    assert post(client, secret, TEAM_KEY)[0].status_code == 200
    assert post(client, secret, OTHER_KEY)[0].status_code == 403

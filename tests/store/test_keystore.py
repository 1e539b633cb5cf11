"""Stored keys: hashed at rest, found by hash, refused at once when revoked or rotated."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from facade.errors import AuthenticationError, InvalidRequestError, NotFoundError
from facade.keys import hash_key
from facade.store.keystore import KeyStore
from facade.store.schema import api_keys

MODELS = {"gpt-test", "sim-model"}


@pytest.fixture
def keys(store):
    return KeyStore(store, MODELS)


def test_create_shows_the_plaintext_once_and_stores_only_its_hash(keys, store):
    view, plaintext = keys.create({"name": "team-a", "models": ["*"], "rpm": 60})
    assert plaintext.startswith("sk-") and len(plaintext) > 40
    assert view["prefix"] == plaintext[:8] and "key" not in view and "key_hash" not in view
    with store.engine.connect() as conn:
        row = conn.execute(select(api_keys)).mappings().one()
    assert row["key_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()
    assert all(plaintext not in str(value) for value in row.values())


def test_lookup_by_hash_gives_the_pipeline_key(keys):
    expires = datetime.now(UTC) + timedelta(days=1)
    view, plaintext = keys.create(
        {
            "name": "team-a",
            "models": ["gpt-test"],
            "rpm": 10,
            "tpm": 1000,
            "budget_usd": 2.5,
            "budget_period": "weekly",
            "expires_at": expires,
            "metadata": {"team": "search", "owner": "ana"},
        }
    )
    key = keys.lookup(hash_key(plaintext))
    assert (key.id, key.name, key.prefix, key.source) == (
        view["id"],
        "team-a",
        plaintext[:8],
        "store",
    )
    assert key.models == ("gpt-test",) and key.allows("gpt-test") and not key.allows("sim-model")
    assert (key.rpm, key.tpm, key.budget_usd, key.budget_period) == (10, 1000, 2.5, "weekly")
    assert abs((key.expires_at - expires).total_seconds()) < 0.001
    assert key.metadata == {"team": "search", "owner": "ana"}
    assert keys.lookup(hash_key("sk-nobody")) is None


def test_no_models_means_no_model(keys):
    _, plaintext = keys.create({"name": "deny"})
    key = keys.lookup(hash_key(plaintext))
    assert key.models == () and not key.allows("gpt-test")


def test_update_is_seen_by_the_next_lookup(keys):
    view, plaintext = keys.create({"name": "a", "models": ["*"], "rpm": 5})
    assert keys.lookup(hash_key(plaintext)).rpm == 5
    updated = keys.update(view["id"], {"rpm": None, "name": "b", "budget_usd": 1.0})
    assert (updated["rpm"], updated["name"], updated["budget_usd"]) == (None, "b", 1.0)
    key = keys.lookup(hash_key(plaintext))
    assert (key.rpm, key.name, key.budget_usd) == (None, "b", 1.0)


def test_revoked_key_is_refused_and_gone_from_the_list(keys):
    view, plaintext = keys.create({"name": "a", "models": ["*"]})
    keys.lookup(hash_key(plaintext))
    keys.revoke(view["id"])
    with pytest.raises(AuthenticationError, match="revoked"):
        keys.lookup(hash_key(plaintext))
    assert keys.list() == []
    assert [v["id"] for v in keys.list(include_revoked=True)] == [view["id"]]
    with pytest.raises(NotFoundError):
        keys.get(view["id"])
    with pytest.raises(NotFoundError):
        keys.revoke(view["id"])
    assert keys.names() == {view["id"]: "a"}


def test_rotate_keeps_the_key_and_retires_the_old_plaintext(keys):
    view, old = keys.create({"name": "a", "models": ["*"], "rpm": 7})
    rotated, new = keys.rotate(view["id"])
    assert new != old and rotated["id"] == view["id"] and rotated["prefix"] == new[:8]
    assert keys.lookup(hash_key(old)) is None
    key = keys.lookup(hash_key(new))
    assert key.id == view["id"] and key.rpm == 7


def test_unknown_models_and_ids_are_named(keys):
    with pytest.raises(InvalidRequestError) as err:
        keys.create({"name": "a", "models": ["gpt-test", "nope"]})
    assert err.value.param == "models[1]"
    with pytest.raises(NotFoundError):
        keys.update("key-missing", {"rpm": 1})
    with pytest.raises(NotFoundError):
        keys.rotate("key-missing")

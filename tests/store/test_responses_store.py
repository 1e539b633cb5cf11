"""Stored Responses answers: read back by the key that made them only, pruned by retention."""

from __future__ import annotations

import time

from facade.store.responses import ResponseStore


def response(rid: str, created_at: float) -> dict:
    return {"id": rid, "object": "response", "created_at": created_at, "output": []}


def test_saved_for_its_key_only(store):
    responses = ResponseStore(store, retention_days=30)
    context = [{"role": "user", "content": "héllo \u2028"}, {"role": "assistant", "content": "hi"}]
    responses.save("resp_1", "key-a", response("resp_1", time.time()), context)
    got = responses.get("resp_1", "key-a")
    assert got == {
        "response": response("resp_1", got["response"]["created_at"]),
        "context": context,
    }
    assert responses.get("resp_1", "key-b") is None
    assert responses.get("resp_2", "key-a") is None


def test_pruned_with_the_usage_retention(store):
    responses = ResponseStore(store, retention_days=1)
    responses.save("resp_new", "k", response("resp_new", time.time()), [])  # prunes: first write
    responses.save("resp_old", "k", response("resp_old", time.time() - 2 * 86400), [])
    assert responses.get("resp_old", "k")  # the next pass is a day away
    assert responses.prune() == 1
    assert responses.get("resp_old", "k") is None and responses.get("resp_new", "k")
    keep_all = ResponseStore(store, retention_days=0)
    keep_all.save("resp_older", "k", response("resp_older", 1.0), [])
    assert keep_all.prune() == 0 and keep_all.get("resp_older", "k")

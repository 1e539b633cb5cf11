"""/readyz is the instance's own state; the stores' state is in its body, never its status."""

from __future__ import annotations


def test_ready_with_each_store_in_the_body(app, client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json()["data"] == {"status": "ready", "dependencies": {"sqlite": "up"}}


def test_a_store_down_is_shown_but_does_not_fail_readiness(app, client):
    gateway = app.extensions["facade"]
    gateway.dependencies.report("sqlite", False)
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json()["data"]["dependencies"] == {"sqlite": "down"}
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'facade_dependency_up{dependency="sqlite"} 0.0' in metrics
    gateway.dependencies.probe()  # the store answers: up again
    assert client.get("/readyz").get_json()["data"]["dependencies"] == {"sqlite": "up"}


def test_503_while_starting_draining_or_without_a_config(app, client):
    gateway = app.extensions["facade"]
    for state, value, word in (
        ("started", False, "starting"),
        ("draining", True, "draining"),
        ("config", None, "config"),
    ):
        saved = getattr(gateway, state)
        setattr(gateway, state, value)
        try:
            resp = client.get("/readyz")
            assert resp.status_code == 503, state
            assert word in resp.get_json()["message"]
        finally:
            setattr(gateway, state, saved)
    assert client.get("/readyz").status_code == 200

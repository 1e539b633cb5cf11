"""The committed spec matches what flask-smorest generates, and documents the contract."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from facade import create_app
from facade.settings import Settings

SPEC = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def generated() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        return _spec(Settings.from_env({}, database_url=f"sqlite:///{tmp}/facade.db"))


def _spec(settings: Settings) -> dict:
    app = create_app(settings=settings)
    try:
        return app.test_client().get("/openapi.json").get_json()
    finally:
        app.facade_close()


def test_committed_spec_is_fresh():
    assert json.loads(SPEC.read_text()) == generated(), "openapi.json is stale: run `make openapi`"


def test_spec_shows_envelope_sse_and_errors():
    spec = generated()
    post = spec["paths"]["/api/v1/chat/completions"]["post"]
    content = post["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/event-stream"}
    schemas = spec["components"]["schemas"]
    envelope = schemas["EnvelopeChatCompletion"]["properties"]
    assert set(envelope) == {"success", "code", "message", "data"}
    for code in ("400", "401", "403", "404", "413", "415", "429", "502", "503", "504"):
        assert code in post["responses"], code
    assert "422" not in post["responses"], "validation errors are 400 here"
    body = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/ChatRequest")
    assert schemas["ChatRequest"]["additionalProperties"] is False
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"

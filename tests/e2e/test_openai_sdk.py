"""The official OpenAI Python SDK, unchanged, against gunicorn: /v1 speaks plain OpenAI.

Success bodies, SSE chunks and errors must be what the SDK expects, so each error status
arrives as the SDK's own exception class and a stream parses chunk by chunk.
"""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from tests.support import (
    OTHER_KEY,
    TEAM_KEY,
    UPSTREAM_SECRET,
    base_config,
    openai_sdk,
    start_gunicorn,
)


@pytest.fixture(scope="module")
def server(fake_upstream, tmp_path_factory):
    srv = start_gunicorn(tmp_path_factory.mktemp("sdk"), base_config(fake_upstream.url))
    yield srv
    assert srv.stop() == 0
    log = srv.log()
    assert UPSTREAM_SECRET not in log and TEAM_KEY not in log and OTHER_KEY not in log


def sdk(server, key: str = TEAM_KEY) -> OpenAI:
    return openai_sdk(server, key)


@pytest.fixture
def client(server):
    c = sdk(server)
    yield c
    c.close()


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_completion(client, fake):
    resp = client.chat.completions.create(
        model="gpt-test", messages=user("hello there [[fake tokens=3]]")
    )
    assert resp.object == "chat.completion"
    assert resp.model == "gpt-test"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == "tok0 tok1 tok2"
    assert resp.choices[0].finish_reason == "stop"
    # The fake counts prompt words: "hello there [[fake tokens=3]]" is 4.
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (4, 3)
    assert resp.usage.total_tokens == 7
    # The gateway's request id travels upstream and back.
    rid = resp._request_id  # the SDK keeps the x-request-id response header
    assert rid and fake.requests(rid)


def test_completion_with_raw_response_headers(client):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test",
        messages=user("[[fake tokens=2]]"),
        extra_headers={"X-Request-ID": "sdk-1"},
    )
    assert raw.headers["x-request-id"] == "sdk-1"
    assert raw.parse().choices[0].message.content == "tok0 tok1"


def test_stream_with_usage(client):
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=user("stream me [[fake tokens=5 drip=0.01 split]]"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "tok0 tok1 tok2 tok3 tok4"
    last = chunks[-1]
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (6, 5)
    assert [c for c in chunks if c.usage is not None] == [last]
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)


def test_stream_without_usage(client):
    stream = client.chat.completions.create(
        model="gpt-test", messages=user("[[fake tokens=3]]"), stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "tok0 tok1 tok2"
    )
    assert all(c.usage is None for c in chunks)


def test_stream_unicode(client):
    stream = client.chat.completions.create(
        model="gpt-test", messages=user("[[fake unicode tokens=6 split]]"), stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "héllo wörld 日本語 emoji😀 line\u2028sep end"


def test_embeddings(client):
    resp = client.embeddings.create(model="gpt-test", input=["one two", "three"])
    assert resp.object == "list"
    assert [d.index for d in resp.data] == [0, 1]
    assert resp.data[0].embedding == pytest.approx([0.1, 0.2, 0.3])
    assert resp.data[1].embedding == pytest.approx([0.2, 0.2, 0.3])
    assert resp.usage.prompt_tokens == 3


def test_models_list(client, server):
    ids = [m.id for m in client.models.list()]
    assert ids == ["gpt-test", "fallback", "sim-model", "secret-model"]
    other = sdk(server, OTHER_KEY)
    try:
        assert [m.id for m in other.models.list()] == ["gpt-test"]
    finally:
        other.close()


def _raises(exc_class, call):
    with pytest.raises(exc_class) as info:
        call()
    err = info.value
    # OpenAI's error shape: the SDK lifts "error" into .body and reads type/param/code from it.
    assert isinstance(err.body, dict) and set(err.body) >= {"message", "type", "param", "code"}
    assert isinstance(err.body["message"], str) and err.body["message"]
    assert err.response.headers["x-request-id"]
    return err


def test_bad_key_is_authentication_error(server):
    bad = sdk(server, "sk-not-a-key")
    try:
        err = _raises(
            openai.AuthenticationError,
            lambda: bad.chat.completions.create(model="gpt-test", messages=user("x")),
        )
    finally:
        bad.close()
    assert err.status_code == 401 and err.type == "authentication_error"


def test_out_of_range_is_bad_request(client, fake):
    err = _raises(
        openai.BadRequestError,
        lambda: client.chat.completions.create(model="gpt-test", messages=user("x"), temperature=5),
    )
    assert err.status_code == 400
    assert err.type == "invalid_request_error" and err.param == "temperature"
    assert "temperature" in err.message
    assert fake.requests() == []


def test_forbidden_model_is_permission_denied(server):
    other = sdk(server, OTHER_KEY)
    try:
        err = _raises(
            openai.PermissionDeniedError,
            lambda: other.chat.completions.create(model="secret-model", messages=user("x")),
        )
    finally:
        other.close()
    assert err.status_code == 403 and err.type == "permission_error"


def test_unknown_model_is_not_found(client):
    err = _raises(
        openai.NotFoundError,
        lambda: client.chat.completions.create(model="no-such-model", messages=user("x")),
    )
    assert err.status_code == 404 and err.type == "model_not_found"


def test_upstream_429_is_rate_limit_error(client):
    err = _raises(
        openai.RateLimitError,
        lambda: client.chat.completions.create(
            model="gpt-test", messages=user("[[fake status=429]]")
        ),
    )
    assert err.status_code == 429


def test_upstream_500_is_a_502(client):
    err = _raises(
        openai.APIStatusError,
        lambda: client.chat.completions.create(
            model="gpt-test", messages=user("[[fake status=500]]")
        ),
    )
    assert err.status_code == 502 and err.type == "upstream_error"
    assert isinstance(err, openai.InternalServerError)


def test_upstream_timeout_is_a_504(client):
    err = _raises(
        openai.APIStatusError,
        lambda: client.chat.completions.create(model="gpt-test", messages=user("[[fake slow=5]]")),
    )
    assert err.status_code == 504 and err.type == "upstream_timeout"


def test_stream_error_before_first_byte_is_an_http_error(client):
    err = _raises(
        openai.APIStatusError,
        lambda: client.chat.completions.create(
            model="gpt-test", messages=user("[[fake status=500]]"), stream=True
        ),
    )
    assert err.status_code == 502


def test_embeddings_error_is_sdk_error(client):
    err = _raises(
        openai.NotFoundError,
        lambda: client.embeddings.create(model="no-such-model", input="x"),
    )
    assert err.status_code == 404


def test_midstream_failure_raises_while_iterating(client):
    stream = client.chat.completions.create(
        model="gpt-test", messages=user("[[fake tokens=6 midstream=3]]"), stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk)
    # The SDK turns a `data: {"error": ...}` event into an APIError carrying our error object.
    assert info.value.body["type"] == "upstream_error"
    assert info.value.message
    text = "".join(c.choices[0].delta.content or "" for c in received if c.choices)
    assert text == "tok0 tok1 "

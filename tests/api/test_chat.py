"""POST /api/v1/chat/completions through Flask's test client, against the live fake upstream."""

from __future__ import annotations

import orjson
import pytest

from tests.support import OTHER_KEY, UPSTREAM_SECRET

URL = "/api/v1/chat/completions"


def ask(text: str = "hello there", **fields) -> dict:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": text}], **fields}


def events(resp) -> list:
    body = resp.get_data()
    assert body.endswith(b"\n\n")
    out = []
    for block in body.split(b"\n\n")[:-1]:
        assert block.startswith(b"data: "), block
        data = block[6:]
        out.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return out


def test_completion_is_enveloped_with_metrics(client, auth, fake):
    resp = client.post(URL, json=ask("count [[fake tokens=4]]"), headers=auth)
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["success"], body["code"], body["message"]) == (True, "200", "successful")
    data = body["data"]
    assert data["object"] == "chat.completion"
    assert data["model"] == "gpt-test"
    assert data["choices"][0]["message"]["content"] == "tok0 tok1 tok2 tok3"
    metrics = data["metrics"]
    assert metrics["output_tokens"] == 4
    assert metrics["input_tokens"] == data["usage"]["prompt_tokens"] == 3  # words, in the fake
    assert metrics["cost_usd"] == pytest.approx((3 * 1.0 + 4 * 2.0) / 1e6)
    assert metrics["provider"] == "fake" and metrics["upstream_model"] == "up-model"
    for name in ("latency_s", "time_to_first_token_s", "tokens_per_second"):
        assert metrics[name] > 0
    assert metrics["inter_token_latency_s"] == 0


def test_upstream_gets_our_model_key_and_request_id(client, auth, fake):
    resp = client.post(URL, json=ask(max_tokens=7), headers={**auth, "X-Request-ID": "trace-42"})
    assert resp.headers["X-Request-ID"] == "trace-42"
    (seen,) = fake.requests("trace-42")
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["authorization"] == f"Bearer {UPSTREAM_SECRET}"
    assert seen["body"]["model"] == "up-model"
    assert seen["body"]["max_tokens"] == 7 and "max_completion_tokens" not in seen["body"]


def test_max_completion_tokens_wins_and_keeps_its_name(client, auth, fake):
    client.post(
        URL,
        json=ask(max_tokens=7, max_completion_tokens=9),
        headers={**auth, "X-Request-ID": "cap-1"},
    )
    (seen,) = fake.requests("cap-1")
    assert seen["body"]["max_completion_tokens"] == 9 and "max_tokens" not in seen["body"]


def test_a_bad_request_id_is_replaced(client, auth):
    resp = client.post(URL, json=ask(), headers={**auth, "X-Request-ID": "bad id\twith spaces"})
    assert resp.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(resp.headers["X-Request-ID"]) == 32


def test_stream_is_enveloped_chunks_then_done(client, auth, fake):
    resp = client.post(URL, json=ask("[[fake tokens=3]]", stream=True), headers=auth)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["X-Accel-Buffering"] == "no"
    evs = events(resp)
    assert evs[-1] == "[DONE]"
    chunks = [e["data"] for e in evs[:-1]]
    assert all(e["success"] is True and e["code"] == "200" for e in evs[:-1])
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-test" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "tok0 tok1 tok2"
    assert not any("usage" in c for c in chunks), "usage only when include_usage is asked"


def test_stream_always_asks_upstream_for_usage(client, auth, fake):
    resp = client.post(URL, json=ask(stream=True), headers={**auth, "X-Request-ID": "su-1"})
    resp.close()  # what a WSGI server does: ends the relay even though nothing was read
    (seen,) = fake.requests("su-1")
    assert seen["body"]["stream_options"] == {"include_usage": True}


def test_stream_usage_chunk_carries_metrics_when_asked(client, auth):
    body = ask("[[fake tokens=6 drip=0.01]]", stream=True, stream_options={"include_usage": True})
    evs = events(client.post(URL, json=body, headers=auth))
    last = evs[-2]["data"]
    assert last["choices"] == []
    assert last["usage"] == {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}
    metrics = last["metrics"]
    assert metrics["output_tokens"] == 6
    assert metrics["time_to_first_token_s"] < metrics["latency_s"]
    assert metrics["inter_token_latency_s"] > 0


@pytest.mark.parametrize("directive", ["split", "crlf split unicode", "unicode"])
def test_awkward_upstream_bytes_relay_intact(client, auth, directive):
    resp = client.post(URL, json=ask(f"[[fake tokens=6 {directive}]]", stream=True), headers=auth)
    chunks = [e["data"] for e in events(resp)[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    expected = "héllo wörld 日本語 emoji😀 line\u2028sep end" if "unicode" in directive else None
    assert text == (expected or "tok0 tok1 tok2 tok3 tok4 tok5")


def test_stream_without_upstream_usage_is_still_metered(client, auth):
    body = ask("[[fake tokens=4 nousage]]", stream=True, stream_options={"include_usage": True})
    evs = events(client.post(URL, json=body, headers=auth))
    assert evs[-2]["data"]["metrics"]["output_tokens"] == 4


@pytest.mark.parametrize(
    ("directive", "status", "etype"),
    [
        ("status=500", 502, "upstream_error"),
        ("status=503", 502, "upstream_error"),
        ("status=401", 502, "upstream_error"),
        ("status=400", 400, "invalid_request_error"),
        ("status=429", 429, "rate_limit_exceeded"),
        ("badjson", 502, "upstream_error"),
        ("slow=5", 504, "upstream_timeout"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_failures_before_first_byte_are_plain_errors(
    client, auth, directive, status, etype, stream
):
    resp = client.post(URL, json=ask(f"[[fake {directive}]]", stream=stream), headers=auth)
    assert resp.status_code == status
    assert resp.headers["Content-Type"] == "application/json"
    body = resp.get_json()
    assert body["success"] is False and body["code"] == str(status)
    assert body["data"]["error"]["type"] == etype
    assert body["data"]["request_id"] == resp.headers["X-Request-ID"]
    assert UPSTREAM_SECRET not in resp.get_data(as_text=True)
    assert "sk-upst" not in body["message"], "an upstream 401 message may quote our key"
    if directive == "status=400":
        assert "maximum context length" in body["message"]


@pytest.mark.parametrize("directive", ["cut=3", "midstream=3", "cut=1 split"])
def test_failure_after_first_byte_is_one_error_event_then_done(client, auth, directive):
    resp = client.post(URL, json=ask(f"[[fake tokens=6 {directive}]]", stream=True), headers=auth)
    assert resp.status_code == 200
    evs = events(resp)
    assert evs[-1] == "[DONE]"
    error = evs[-2]
    assert error["success"] is False and error["code"] == "502"
    assert error["data"]["error"]["type"] == "upstream_error"
    assert all(e["success"] for e in evs[:-2])


def test_read_timeout_mid_stream_is_an_error_event(client, auth):
    resp = client.post(URL, json=ask("[[fake tokens=3 drip=4]]", stream=True), headers=auth)
    evs = events(resp)
    assert evs[-2]["code"] == "504" and evs[-2]["data"]["error"]["type"] == "upstream_timeout"


def test_auto_picks_among_candidates(client, auth):
    body = {"messages": [{"role": "user", "content": "hi"}]}
    data = client.post(URL, json=body, headers=auth).get_json()["data"]
    assert data["model"] == "gpt-test" and data["metrics"]["provider"] == "fake"
    body["model"] = "auto"
    assert client.post(URL, json=body, headers=auth).get_json()["data"]["model"] == "gpt-test"


def test_fallback_to_the_next_target_before_the_first_byte(client, auth, fake):
    resp = client.post(URL, json=ask(model="fallback"), headers={**auth, "X-Request-ID": "fb-1"})
    assert resp.status_code == 200
    data = resp.get_json()["data"]
    assert data["metrics"]["upstream_model"] == "healthy"
    assert data["metrics"]["attempts"] == 2
    assert [r["body"]["model"] for r in fake.requests("fb-1")] == ["broken+status=500", "healthy"]


@pytest.mark.parametrize(
    ("headers", "status", "etype"),
    [
        ({}, 401, "authentication_error"),
        ({"Authorization": "Bearer sk-nope"}, 401, "authentication_error"),
        ({"Authorization": "Basic abc"}, 401, "authentication_error"),
        ({"Authorization": f"Bearer {OTHER_KEY}"}, 403, "permission_error"),
    ],
)
def test_auth_errors(client, fake, headers, status, etype):
    resp = client.post(URL, json=ask(model="secret-model"), headers=headers)
    assert resp.status_code == status
    assert resp.get_json()["data"]["error"]["type"] == etype
    assert fake.requests() == []


def test_bad_inputs_never_reach_upstream(client, auth, fake):
    cases = [
        (dict(data=b"{not json", content_type="application/json"), 400, "invalid_request_error"),
        (dict(data=b"\xff\xfe", content_type="application/json"), 400, "invalid_request_error"),
        (dict(data=b'"just a string"', content_type="application/json"), 400, None),
        (dict(data=b"model=x", content_type="text/plain"), 415, "unsupported_media_type"),
        (dict(json=ask(temperature=9)), 400, "invalid_request_error"),
        (dict(json=ask(model="ghost")), 404, "model_not_found"),
        (dict(json=ask("x" * 70000)), 413, "request_too_large"),
    ]
    for kwargs, status, etype in cases:
        resp = client.post(URL, headers=auth, **kwargs)
        assert resp.status_code == status, (kwargs, resp.get_data())
        if etype:
            assert resp.get_json()["data"]["error"]["type"] == etype
    assert fake.requests() == []


def test_param_names_the_field(client, auth):
    body = client.post(URL, json=ask(temperature=9), headers=auth).get_json()
    assert body["data"]["error"]["param"] == "temperature"
    assert body["message"].startswith("temperature:")


def test_unknown_route_and_method_are_enveloped(client, auth):
    assert client.get("/api/v1/nothing", headers=auth).get_json()["code"] == "404"
    resp = client.get(URL, headers=auth)
    assert (
        resp.status_code == 405 and resp.get_json()["data"]["error"]["type"] == "method_not_allowed"
    )


def test_prompts_are_logged_only_when_the_operator_turns_it_on(config_dict, tmp_path, caplog):
    import logging
    import os

    from facade import create_app
    from facade.config import parse_config
    from facade.settings import Settings
    from tests.support import TEAM_KEY, upstream_env

    config = parse_config(config_dict, environ={**os.environ, **upstream_env()})
    headers = {"Authorization": f"Bearer {TEAM_KEY}"}
    for log_prompts in (False, True):
        settings = Settings.from_env(
            {}, database_url=f"sqlite:///{tmp_path}/p{log_prompts}.db", log_prompts=log_prompts
        )
        app = create_app(config, settings)
        try:
            caplog.clear()
            with caplog.at_level(logging.INFO):
                client = app.test_client()
                client.post(URL, json=ask("MARKER-PROMPT-42 [[fake tokens=2]]"), headers=headers)
                client.post(
                    URL,
                    json=ask("MARKER-STREAM-43 [[fake tokens=2]]", stream=True),
                    headers=headers,
                ).get_data()
            prompt_lines = [r for r in caplog.records if r.name == "facade.prompts"]
            logged = caplog.text
            if not log_prompts:
                assert "MARKER-" not in logged and prompt_lines == []
            else:
                assert len(prompt_lines) == 2
                assert prompt_lines[0].prompt[0]["content"].startswith("MARKER-PROMPT-42")
                assert prompt_lines[0].completion == ["tok0 tok1"]
                assert prompt_lines[1].completion == ["tok0 tok1"]
        finally:
            app.facade_close()

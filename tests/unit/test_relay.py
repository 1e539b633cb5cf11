"""The SSE relay on its own: what reaches the client for a whole stream, a stream that breaks
off, and a client that leaves before the first byte. The stream comes from the live fake
upstream through the real pipeline; no Flask app and no gunicorn."""

from __future__ import annotations

import json

import pytest

from facade.api.hangup import HangupWatch
from facade.api.relay import Relay
from facade.envelope import EnvelopeStream
from facade.keys import ApiKey
from facade.outcome import Outcome
from facade.pipeline import ChatPipeline
from facade.telemetry import observe
from tests.builders import pipeline_over

KEY = ApiKey(id="k", name="team", prefix="sk-team", models=("*",))


@pytest.fixture
def pipeline(fake):
    with pipeline_over(fake.url) as parts:
        yield parts


def relay_for(pipeline: ChatPipeline, text: str, rid: str, **fields) -> tuple[Relay, Outcome]:
    outcome = Outcome(request_id=rid)
    observe.start(outcome)
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": text}], "stream": True}
    opened = pipeline.open_stream({**body, **fields}, KEY, rid, outcome)
    return Relay(opened, EnvelopeStream, rid, HangupWatch({}), outcome), outcome


def events(raw: bytes) -> list:
    out = []
    for block in raw.decode().split("\n\n"):
        if block.startswith("data: "):
            data = block[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_a_whole_stream_is_enveloped_chunks_a_usage_chunk_and_done(pipeline):
    pipe, accounting = pipeline
    relay, outcome = relay_for(
        pipe, "[[fake tokens=4]]", "relay-ok", stream_options={"include_usage": True}
    )
    sent = events(b"".join(relay))
    relay.close()
    assert sent[-1] == "[DONE]"
    chunks = sent[:-1]
    assert all(e["success"] is True and e["code"] == "200" for e in chunks)
    text = "".join((c["delta"].get("content") or "") for e in chunks for c in e["data"]["choices"])
    assert text.split() == ["tok0", "tok1", "tok2", "tok3"]
    final = chunks[-1]["data"]
    assert final["choices"] == [] and final["usage"]["completion_tokens"] == 4
    assert final["metrics"]["output_tokens"] == 4
    assert all(e["data"]["model"] == "gpt-test" for e in chunks)  # never the upstream's id
    assert [entry[0] for entry in accounting.log] == ["admit", "settle"]
    assert outcome.finished and outcome.status == 200


def test_a_stream_that_breaks_off_ends_with_one_error_event_then_done(pipeline):
    pipe, accounting = pipeline
    relay, outcome = relay_for(pipe, "[[fake tokens=6 midstream=2]]", "relay-broken")
    sent = events(b"".join(relay))
    relay.close()
    assert sent[-1] == "[DONE]"
    errors = [e for e in sent[:-1] if e["success"] is False]
    assert len(errors) == 1 and sent[-2] is errors[0]
    assert errors[0]["code"] == "502" and errors[0]["data"]["request_id"] == "relay-broken"
    assert accounting.log[-1][0] == "settle" and accounting.log[-1][3] == 502
    assert outcome.error_type == "upstream_error"


def test_a_client_gone_before_the_first_byte_still_settles_once(pipeline):
    pipe, accounting = pipeline
    relay, outcome = relay_for(pipe, "[[fake tokens=50 drip=0.05]]", "relay-gone")
    relay.close()  # the WSGI server closes the body without iterating it
    relay.close()
    settles = [entry for entry in accounting.log if entry[0] == "settle"]
    assert len(settles) == 1 and settles[0][3] == 499
    assert outcome.finished

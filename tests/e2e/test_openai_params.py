"""The official OpenAI SDK sends today's Chat Completions parameters; the upstream gets them.

Against gunicorn: each parameter reaches an OpenAI-compatible upstream as sent; vendor
extras given through `extra_body` reach a vLLM-style provider that lists them and are 400s
elsewhere; reasoning tokens come back in usage and metrics.
"""

from __future__ import annotations

import openai
import pytest
import requests

from tests.support import TEAM_KEY, base_config, openai_sdk, start_gunicorn, with_vendor_models

PARAMS = {
    "reasoning_effort": "low",
    "verbosity": "high",
    "modalities": ["text"],
    "audio": {"voice": "alloy", "format": "mp3"},
    "prediction": {"type": "content", "content": "draft"},
    "store": True,
    "metadata": {"team": "a"},
    "service_tier": "flex",
    "prompt_cache_key": "pck-1",
    "safety_identifier": "hash-1",
    "web_search_options": {"search_context_size": "low"},
    "functions": [{"name": "f", "parameters": {"type": "object", "properties": {}}}],
    "function_call": "auto",
    "logprobs": True,
    "top_logprobs": 2,
    "parallel_tool_calls": False,
    "seed": 7,
    "user": "u-1",
    "n": 1,
}


@pytest.fixture(scope="module")
def server(fake_upstream, tmp_path_factory):
    config = base_config(fake_upstream.url)
    config["providers"].append(
        {
            "name": "vllm",
            "kind": "openai",
            "base_url": f"{fake_upstream.url}/vllm/v1",
            "passthrough_params": ["min_p", "chat_template_kwargs"],
        }
    )
    config["models"].append({"name": "llama", "targets": [{"provider": "vllm", "model": "l"}]})
    srv = start_gunicorn(tmp_path_factory.mktemp("params"), config)
    yield srv
    assert srv.stop() == 0


@pytest.fixture
def client(server):
    c = openai_sdk(server)
    yield c
    c.close()


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_each_parameter_reaches_the_upstream_as_sent(client, fake, name):
    extra = {name: PARAMS[name]}
    if name == "top_logprobs":
        extra["logprobs"] = True
    if name in ("function_call", "parallel_tool_calls"):
        extra["functions" if name == "function_call" else "tools"] = (
            PARAMS["functions"]
            if name == "function_call"
            else [{"type": "function", "function": PARAMS["functions"][0]}]
        )
    if name == "audio":
        extra["modalities"] = ["text", "audio"]
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=user("[[fake tokens=2]]"), **extra
    )
    assert raw.parse().choices[0].message.content == "tok0 tok1"
    (sent,) = fake.requests(raw.headers["x-request-id"])
    for key, value in extra.items():
        assert sent["body"][key] == value, key


def test_max_completion_tokens_goes_by_its_name(client, fake):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=user("[[fake tokens=2]]"), max_completion_tokens=50
    )
    (sent,) = fake.requests(raw.headers["x-request-id"])
    assert sent["body"]["max_completion_tokens"] == 50 and "max_tokens" not in sent["body"]


def test_vendor_extras_through_extra_body(client, fake):
    extras = {"min_p": 0.05, "chat_template_kwargs": {"enable_thinking": False}}
    raw = client.chat.completions.with_raw_response.create(
        model="llama", messages=user("[[fake tokens=1]]"), extra_body=extras
    )
    assert raw.parse().choices[0].message.content == "tok0"
    (sent,) = fake.requests(raw.headers["x-request-id"])
    assert sent["path"] == "/vllm/v1/chat/completions"
    assert {k: sent["body"][k] for k in extras} == extras
    for model, extra in (("gpt-test", {"min_p": 0.1}), ("llama", {"min_q": 0.1})):
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model=model, messages=user("x"), extra_body=extra)
        assert info.value.param == next(iter(extra))
    assert len(fake.requests()) == 1


def test_bad_values_are_named(client, fake):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="gpt-test", messages=user("x"), reasoning_effort="extreme"
        )
    assert info.value.param == "reasoning_effort"
    assert fake.requests() == []


def test_reasoning_tokens_in_usage_and_metrics(client, server):
    resp = client.chat.completions.create(
        model="gpt-test", messages=user("[[fake tokens=5 reasoning=3]]"), reasoning_effort="high"
    )
    assert resp.usage.completion_tokens_details.reasoning_tokens == 3
    raw = requests.post(
        f"{server.url}/api/v1/chat/completions",
        json={"model": "gpt-test", "messages": user("[[fake tokens=5 reasoning=3]]")},
        headers={"Authorization": f"Bearer {TEAM_KEY}"},
        timeout=10,
    ).json()["data"]
    assert raw["usage"]["completion_tokens_details"]["reasoning_tokens"] == 3
    assert raw["metrics"]["reasoning_tokens"] == 3


@pytest.fixture(scope="module")
def vendors(fake_upstream, tmp_path_factory):
    config = with_vendor_models(base_config(fake_upstream.url), fake_upstream.url)
    srv = start_gunicorn(tmp_path_factory.mktemp("vendors"), config)
    c = openai_sdk(srv)
    yield c
    c.close()
    assert srv.stop() == 0


def test_vendors_get_translations(vendors, fake):
    raw = vendors.chat.completions.with_raw_response.create(
        model="claude",
        messages=user("[[fake tokens=2]]"),
        reasoning_effort="low",
        safety_identifier="sid-1",
        store=True,
        prompt_cache_key="k",
        service_tier="default",
    )
    assert raw.parse().choices[0].message.content == "tok0 tok1"
    (sent,) = fake.requests(raw.headers["x-request-id"])
    body = sent["body"]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["metadata"] == {"user_id": "sid-1"} and body["service_tier"] == "standard_only"
    assert "store" not in body and "prompt_cache_key" not in body
    raw = vendors.chat.completions.with_raw_response.create(
        model="gem", messages=user("[[fake tokens=2]]"), reasoning_effort="medium", user="u"
    )
    assert raw.parse().choices[0].message.content == "tok0 tok1"
    (sent,) = fake.requests(raw.headers["x-request-id"])
    assert sent["body"]["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 8192}


@pytest.mark.parametrize("model", ["claude", "gem"])
@pytest.mark.parametrize(
    "name", ["verbosity", "modalities", "audio", "prediction", "web_search_options"]
)
def test_vendors_refuse_naming_the_parameter(vendors, fake, model, name):
    extra = {name: PARAMS[name]}
    if name == "modalities":
        extra = {"modalities": ["text", "audio"], "audio": PARAMS["audio"]}
    with pytest.raises(openai.BadRequestError) as info:
        vendors.chat.completions.create(model=model, messages=user("x"), **extra)
    assert info.value.param in extra and info.value.param in info.value.message
    assert fake.requests() == []

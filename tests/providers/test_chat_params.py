"""Today's Chat Completions parameters per vendor: sent as given, translated, or refused."""

from __future__ import annotations

import pytest

from facade.config import ModelConfig, parse_config
from facade.errors import UnsupportedParameterError
from facade.providers import anthropic, azure, gemini, openai
from facade.providers.base import ChatCall

MODEL = ModelConfig(
    name="m",
    targets=(),
    input_cost_per_1m=0.0,
    output_cost_per_1m=0.0,
    context_window=200000,
    max_output_tokens=4096,
    capabilities=frozenset(),
)
USER = {"role": "user", "content": "hello"}
NEW = {
    "reasoning_effort": "high",
    "verbosity": "low",
    "modalities": ["text", "audio"],
    "audio": {"voice": "alloy", "format": "mp3"},
    "prediction": {"type": "content", "content": "x = 1"},
    "store": True,
    "metadata": {"team": "a"},
    "service_tier": "flex",
    "prompt_cache_key": "pck-1",
    "safety_identifier": "hash-1",
    "web_search_options": {"search_context_size": "low"},
    "functions": [{"name": "f", "parameters": {"type": "object"}}],
    "function_call": {"name": "f"},
}


def call(max_tokens: int | None = None, **body) -> ChatCall:
    body.setdefault("messages", [USER])
    return ChatCall(body, MODEL, "up", max_tokens, "req-1", False)


def test_azure_api_version_defaults_to_a_ga_version():
    raw = {
        "providers": [{"name": "az", "kind": "azure", "base_url": "https://r.openai.azure.com"}],
        "models": [{"name": "m", "targets": [{"provider": "az", "model": "dep"}]}],
    }
    provider = parse_config(raw).providers["az"]
    assert azure.chat_url(provider, "dep", False) == (
        "https://r.openai.azure.com/openai/deployments/dep/chat/completions?api-version=2024-10-21"
    )


@pytest.mark.parametrize("module", [openai, azure])
def test_openai_compatible_upstreams_get_every_parameter_as_sent(module):
    payload = module.build_payload(call(**NEW))
    for name, value in NEW.items():
        assert payload[name] == value


# -- Anthropic ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("effort", "max_tokens", "budget"),
    [("minimal", None, 1024), ("low", None, 2048), ("medium", None, 3072), ("high", 32000, 24576)],
)
def test_anthropic_reasoning_effort_is_a_thinking_budget(effort, max_tokens, budget):
    payload = anthropic.build_payload(call(max_tokens, reasoning_effort=effort))
    assert payload["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert payload["max_tokens"] - budget >= 1024  # room left for the answer


def test_anthropic_reasoning_effort_none_and_small_caps():
    assert "thinking" not in anthropic.build_payload(call(reasoning_effort="none"))
    with pytest.raises(UnsupportedParameterError) as err:
        anthropic.build_payload(call(1500, reasoning_effort="low"))
    assert err.value.param == "reasoning_effort"


@pytest.mark.parametrize(
    ("fields", "user_id"),
    [
        ({"user": "u-1"}, "u-1"),
        ({"user": "u-1", "safety_identifier": "s-1"}, "s-1"),
        ({"metadata": {"user_id": "m-1", "team": "a"}}, "m-1"),
        ({"metadata": {"team": "a"}}, None),
    ],
)
def test_anthropic_user_id_from_safety_identifier_user_or_metadata(fields, user_id):
    payload = anthropic.build_payload(call(**fields))
    assert payload.get("metadata") == ({"user_id": user_id} if user_id else None)


def test_anthropic_drops_what_cannot_change_the_answer():
    payload = anthropic.build_payload(
        call(store=True, prompt_cache_key="k", verbosity="medium", modalities=["text"])
    )
    for name in ("store", "prompt_cache_key", "verbosity", "modalities"):
        assert name not in payload
    assert anthropic.build_payload(call(service_tier="auto"))["service_tier"] == "auto"
    assert anthropic.build_payload(call(service_tier="default"))["service_tier"] == "standard_only"


def test_anthropic_legacy_functions_are_tools():
    payload = anthropic.build_payload(call(functions=NEW["functions"], function_call={"name": "f"}))
    assert payload["tools"] == [{"name": "f", "input_schema": {"type": "object"}}]
    assert payload["tool_choice"] == {"type": "tool", "name": "f"}


# -- Gemini -------------------------------------------------------------------------------


@pytest.mark.parametrize(("effort", "budget"), [("none", 0), ("low", 2048), ("high", 24576)])
def test_gemini_reasoning_effort_is_a_thinking_config(effort, budget):
    config = gemini.build_payload(call(reasoning_effort=effort))["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": budget}


def test_gemini_drops_hints_and_reads_functions_as_tools():
    payload = gemini.build_payload(
        call(
            store=True,
            prompt_cache_key="k",
            metadata={"a": "b"},
            safety_identifier="s",
            user="u",
            service_tier="default",
            functions=NEW["functions"],
            function_call="auto",
        )
    )
    assert set(payload) == {"contents", "tools", "toolConfig"}
    assert payload["tools"][0]["functionDeclarations"][0]["name"] == "f"
    assert payload["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


# -- refused by both ----------------------------------------------------------------------


@pytest.mark.parametrize("module", [anthropic, gemini])
@pytest.mark.parametrize(
    "name",
    ["verbosity", "modalities", "audio", "prediction", "service_tier", "web_search_options"],
)
def test_vendors_refuse_what_would_change_the_answer_naming_it(module, name):
    with pytest.raises(UnsupportedParameterError) as err:
        module.build_payload(call(**{name: NEW[name]}))
    assert err.value.param == name and name in err.value.message

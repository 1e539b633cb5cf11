"""Cost = the bill: each vendor's prompt-cache and reasoning counts, priced at their own rates,
through the app against the wire fakes, streamed and not, to the exact dollar amount."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from tests.support import ADMIN_KEY, TEAM_KEY, admin_headers

URL = "/api/v1/chat/completions"
AUTH = {"Authorization": f"Bearer {TEAM_KEY}"}
# Prices per 1M: input, read from the cache, written to it, output (reasoning included).
PRICES = {
    "input_cost_per_1m": 2.0,
    "cached_input_cost_per_1m": 0.5,
    "cache_write_input_cost_per_1m": 2.5,
    "output_cost_per_1m": 8.0,
}
# The fakes count prompt words, answer 8 tokens and add the vendor's cache and reasoning
# fields as the directives ask.
TEXT = "count [[fake tokens=8 cached=10 cachewrite=20 reasoning=5]]"
WORDS = len(TEXT.split())  # 6


@pytest.fixture
def settings(tmp_path):
    from facade.settings import Settings

    return Settings.from_env(
        {}, database_url=f"sqlite:///{tmp_path}/facade.db", admin_key=ADMIN_KEY
    )


@pytest.fixture
def config_dict(fake):
    def model(name: str, provider: str, **extra) -> dict:
        targets = [{"provider": provider, "model": f"{name}-up"}]
        return {"name": name, "targets": targets, **PRICES, **extra}

    return {
        "providers": [
            {"name": "oa", "kind": "openai", "base_url": f"{fake.url}/v1"},
            {
                "name": "az",
                "kind": "azure",
                "base_url": fake.url,
                "api_key": "az-key",
                "api_version": "2024-10-21",
            },
            {"name": "claude", "kind": "anthropic", "base_url": fake.url, "api_key": "sk-ant"},
            {"name": "google", "kind": "gemini", "base_url": f"{fake.url}/v1beta", "api_key": "g"},
        ],
        "models": [
            model("openai", "oa"),
            model("azure", "az"),
            model("anthropic", "claude"),
            model("gemini", "google"),
            {
                "name": "plain",
                "targets": [{"provider": "oa", "model": "p"}],
                "input_cost_per_1m": 3,
            },
        ],
        "keys": [{"name": "team", "key": "${TEAM_KEY}", "models": ["*"]}],
    }


def usd(uncached: int, cached: int, written: int, output: int) -> float:
    return (uncached * 2.0 + cached * 0.5 + written * 2.5 + output * 8.0) / 1e6


# (model, input tokens, cached, cache-written, output, reasoning, dollars) as each vendor
# reports them: OpenAI and Gemini count cached tokens inside the prompt and report no cache
# writes; OpenAI's reasoning is part of completion_tokens, Gemini's thoughts are billed as
# output beside candidatesTokenCount; Anthropic reports reads and writes beside input_tokens
# and no separate reasoning count.
# OpenAI: 6 x 2 + 10 x 0.5 + 8 x 8 = 81 millionths of a dollar; Gemini: 6 x 2 + 10 x 0.5 +
# 13 x 8 = 121; Claude: 6 x 2 + 10 x 0.5 + 20 x 2.5 + 8 x 8 = 131.
CASES = [
    ("openai", WORDS + 10, 10, 0, 8, 5, 0.000081),
    ("azure", WORDS + 10, 10, 0, 8, 5, 0.000081),
    ("anthropic", WORDS + 30, 10, 20, 8, 0, 0.000131),
    ("gemini", WORDS + 10, 10, 0, 8 + 5, 5, 0.000121),
]


def body(model: str, stream: bool) -> dict:
    out = {"model": model, "messages": [{"role": "user", "content": TEXT}], "max_tokens": 50}
    if stream:
        out.update(stream=True, stream_options={"include_usage": True})
    return out


def last_chunk(resp) -> dict:
    blocks = [b for b in resp.get_data().split(b"\n\n") if b]
    assert blocks[-1] == b"data: [DONE]"
    return orjson.loads(blocks[-2][6:])["data"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(
    ("model", "tokens", "cached", "written", "output", "reasoning", "dollars"), CASES
)
def test_cost_prices_cached_written_and_reasoning_tokens_as_billed(
    client, model, tokens, cached, written, output, reasoning, dollars, stream
):
    resp = client.post(URL, json=body(model, stream), headers=AUTH)
    assert resp.status_code == 200, resp.get_data()
    data = last_chunk(resp) if stream else resp.get_json()["data"]
    metrics = data["metrics"]
    assert {
        k: metrics[k]
        for k in (
            "input_tokens",
            "cached_input_tokens",
            "cache_write_input_tokens",
            "output_tokens",
            "reasoning_tokens",
            "total_tokens",
            "cache_hit",
        )
    } == {
        "input_tokens": tokens,
        "cached_input_tokens": cached,
        "cache_write_input_tokens": written,
        "output_tokens": output,
        "reasoning_tokens": reasoning,
        "total_tokens": tokens + output,
        "cache_hit": False,
    }
    assert metrics["cost_usd"] == pytest.approx(dollars, abs=1e-12)
    assert dollars == pytest.approx(usd(tokens - cached - written, cached, written, output))
    # The answer's usage is OpenAI's shape with the details objects.
    usage = data["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (tokens, output)
    assert usage["prompt_tokens_details"]["cached_tokens"] == cached
    assert usage["prompt_tokens_details"].get("cache_write_tokens", 0) == written
    assert usage.get("completion_tokens_details", {}).get("reasoning_tokens", 0) == reasoning


def test_cache_prices_default_to_the_input_price(client):
    text = "count [[fake tokens=2 cached=6]]"
    msg = {"model": "plain", "messages": [{"role": "user", "content": text}]}
    metrics = client.post(URL, json=msg, headers=AUTH).get_json()["data"]["metrics"]
    assert (metrics["input_tokens"], metrics["cached_input_tokens"]) == (4 + 6, 6)
    assert metrics["cost_usd"] == pytest.approx(10 * 3.0 / 1e6, abs=1e-15)


def test_usage_rows_and_report_count_cached_input(app, client):
    for model in ("openai", "anthropic"):
        for stream in (False, True):
            resp = client.post(URL, json=body(model, stream), headers=AUTH)
            assert resp.status_code == 200 and resp.get_data()  # a stream settles at its end
    app.extensions["facade"].accounting.flush()
    today = datetime.now(UTC).date().isoformat()
    rows = client.get(
        f"/api/v1/admin/usage?from={today}&to={today}", headers=admin_headers()
    ).get_json()["data"]["rows"]
    by_model = {r["model"]: r for r in rows}
    openai, claude = by_model["openai"], by_model["anthropic"]
    assert (openai["requests"], openai["input_tokens"], openai["cached_input_tokens"]) == (
        2,
        2 * (WORDS + 10),
        20,
    )
    assert (claude["requests"], claude["input_tokens"], claude["cached_input_tokens"]) == (
        2,
        2 * (WORDS + 30),
        20,
    )
    assert claude["cost_usd"] == pytest.approx(2 * 0.000131, abs=1e-12)
    assert openai["cost_usd"] == pytest.approx(2 * 0.000081, abs=1e-12)


def test_the_cap_always_goes_upstream(client, fake):
    """No upstream may bill more output than admission reserved: without a cap from the
    caller, the model's max_output_tokens goes out (OpenAI's current name for it)."""
    msg = {"messages": [{"role": "user", "content": "hi"}]}
    for model in ("plain", "gemini"):
        assert client.post(URL, json={**msg, "model": model}, headers=AUTH).status_code == 200
    openai, gemini = (r["body"] for r in fake.requests()[-2:])
    assert openai["max_completion_tokens"] == 4096 and "max_tokens" not in openai
    assert gemini["generationConfig"]["maxOutputTokens"] == 4096
    resp = client.post(URL, json={**msg, "model": "plain", "max_tokens": 7}, headers=AUTH)
    assert resp.status_code == 200
    sent = fake.requests()[-1]["body"]
    assert sent["max_tokens"] == 7 and "max_completion_tokens" not in sent

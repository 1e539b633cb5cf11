"""The response cache's pure parts: entry names, Cache-Control, the LRU, assemble and replay."""

from __future__ import annotations

import time

import pytest

from facade.cache import CHAT, EMBEDDINGS, cache_directives, entry_digest, hit_metrics
from facade.cache.backends import MemoryBackend
from facade.cache.replay import RecordingStream, ReplayStream, assemble, replay
from facade.config import ConfigError, parse_config
from facade.metering import Meter

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def test_the_digest_ignores_stream_options_user_and_key_order():
    base = entry_digest(CHAT, "key-1", BODY)
    same = {
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "u-7",
        "messages": [{"content": "hi", "role": "user"}],
        "model": "m",
    }
    assert entry_digest(CHAT, "key-1", same) == base
    assert entry_digest(CHAT, "key-2", BODY) != base
    assert entry_digest(EMBEDDINGS, "key-1", BODY) != base
    assert entry_digest(CHAT, "key-1", {**BODY, "temperature": 0.5}) != base
    assert entry_digest(CHAT, "key-1", {**BODY, "model": "other"}) != base


def test_a_body_that_is_not_plain_json_cannot_be_keyed():
    with pytest.raises(TypeError):
        entry_digest(CHAT, "k", {**BODY, "metadata": {"n": 2**70}})


@pytest.mark.parametrize(
    "header, expected",
    [
        (None, (True, True)),
        ("", (True, True)),
        ("max-age=60", (True, True)),
        ("no-cache", (False, True)),
        ("No-Cache", (False, True)),
        ("no-store", (False, False)),
        ("no-cache, no-store", (False, False)),
        ("private, no-cache=Set-Cookie", (False, True)),
    ],
)
def test_cache_control(header, expected):
    assert cache_directives(header) == expected


def test_the_lru_is_bounded_by_entries_and_bytes():
    lru = MemoryBackend(ttl_s=60, max_entries=3, max_bytes=10_000)
    for name in "abcd":
        lru.put(name, b"x" * 10)
    assert len(lru) == 3 and lru.get("a") is None
    assert lru.get("b") == b"x" * 10  # b is now the most recently used
    lru.put("e", b"y" * 10)
    assert lru.get("c") is None and lru.get("b") is not None
    by_bytes = MemoryBackend(ttl_s=60, max_entries=100, max_bytes=2048)
    for i in range(10):
        by_bytes.put(str(i), b"z" * 500)
    assert by_bytes.bytes <= 2048 and len(by_bytes) == 4
    assert by_bytes.get("9") is not None and by_bytes.get("0") is None
    by_bytes.put("9", b"w")  # replacing an entry frees its old bytes
    assert by_bytes.bytes == 3 * 500 + 1


def test_lru_entries_expire():
    lru = MemoryBackend(ttl_s=0.05, max_entries=10, max_bytes=10_000)
    lru.put("a", b"1")
    assert lru.get("a") == b"1"
    time.sleep(0.08)
    assert lru.get("a") is None and lru.bytes == 0


def _chunk(delta: dict | None = None, finish: str | None = None, index: int = 0, **extra):
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "up",
        "choices": [{"index": index, "delta": delta or {}, "finish_reason": finish}],
        **extra,
    }


def test_assemble_joins_text_and_tool_call_arguments():
    chunks = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Hel"}),
        _chunk({"content": "lo"}),
        _chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "t1", "type": "function", "function": {"name": "f"}}
                ]
            }
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}),
        _chunk(finish="tool_calls", system_fingerprint="fp"),
        {"id": "c1", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}},
    ]
    answer = assemble(chunks)
    assert answer == {
        "id": "c1",
        "object": "chat.completion",
        "created": 7,
        "system_fingerprint": "fp",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello",
                    "tool_calls": [
                        {
                            "id": "t1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a": 1}'},
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
    }


def test_assemble_refuses_an_unfinished_or_odd_stream():
    assert assemble([]) is None
    assert assemble([_chunk({"content": "cut"})]) is None  # no finish_reason: cut off
    two = [_chunk({"content": "a"}, "stop"), _chunk({"content": "b"}, index=1)]
    assert assemble(two) is None  # the second choice never finished
    odd = [_chunk({"audio": {"id": "a1"}}), _chunk(finish="stop")]
    assert assemble(odd) is None  # not something a replay would give back faithfully


def test_replay_gives_back_what_assemble_took():
    answer = {
        "id": "c1",
        "object": "chat.completion",
        "created": 7,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi there", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            },
            {
                "index": 1,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "t",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            },
        ],
    }
    chunks = replay(answer)
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "m" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hi there"}
    again = assemble(chunks)
    assert again["choices"] == [
        {**answer["choices"][0], "message": {"role": "assistant", "content": "Hi there"}},
        answer["choices"][1],
    ]
    stream = ReplayStream(chunks[1:])
    assert list(stream) == chunks[1:]
    stream.close()


def test_recording_keeps_the_chunks_up_to_a_limit():
    chunks = [_chunk({"content": str(i)}) for i in range(5)]
    sink: list[dict] = []
    stream = RecordingStream(ReplayStream(chunks), sink, limit=10)
    assert list(stream) == chunks and sink == chunks
    stream.close()
    long: list[dict] = []
    assert list(RecordingStream(ReplayStream(chunks), long, limit=3)) == chunks
    assert long == []  # too long to keep: relayed whole, stored never


def test_a_hit_keeps_the_tokens_and_costs_nothing():
    original = {
        "input_tokens": 10,
        "output_tokens": 4,
        "total_tokens": 14,
        "cost_usd": 0.5,
        "latency_s": 3.0,
        "time_to_first_token_s": 1.0,
        "inter_token_latency_s": 0.1,
        "tokens_per_second": 20.0,
        "provider": "p",
        "upstream_model": "u",
        "attempts": 2,
        "cache_hit": False,
    }
    metrics = hit_metrics(original, Meter())
    assert metrics["cost_usd"] == 0 and metrics["cache_hit"] is True and metrics["attempts"] == 0
    assert metrics["latency_s"] < 1 and metrics["tokens_per_second"] == 0
    for name in ("input_tokens", "output_tokens", "total_tokens", "provider", "upstream_model"):
        assert metrics[name] == original[name]
    assert original["cost_usd"] == 0.5  # the entry itself is untouched


def _config(**cache) -> dict:
    return {
        "providers": [{"name": "s", "kind": "simulator"}],
        "models": [{"name": "m", "targets": [{"provider": "s", "model": "x"}], "cache": True}],
        "keys": [{"name": "k", "key": "sk-12345", "models": ["*"], "cache": True}],
        "cache": cache,
    }


def test_the_cache_section_is_validated_and_off_by_default():
    config = parse_config(_config(ttl_s=30, max_entries=5, scope="global"))
    assert (config.cache.ttl_s, config.cache.max_entries, config.cache.scope) == (30, 5, "global")
    assert config.models["m"].cache and config.keys[0].cache
    plain = _config()
    del plain["cache"]
    assert parse_config(plain).cache is None
    with pytest.raises(ConfigError, match=r"cache\.scope"):
        parse_config(_config(scope="team"))
    with pytest.raises(ConfigError, match=r"cache\.ttl_s"):
        parse_config(_config(ttl_s=0))
    with pytest.raises(ConfigError, match=r"cache\.max_entrys"):
        parse_config(_config(max_entrys=3))

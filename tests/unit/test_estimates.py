"""The admission bound: what an upstream can bill for a body, from its JSON bytes."""

from __future__ import annotations

import orjson
import pytest

from facade.bound import demand, largest_cost_nusd
from facade.estimates import (
    BOUND_PER_IMAGE,
    BOUND_PER_MESSAGE,
    BOUND_PER_REQUEST,
    byte_tokens,
    chat_input_bound,
    choices,
    embedding_input_bound,
)
from tests.builders import model_config, target


def chat(*messages, **fields) -> dict:
    return {"model": "m", "messages": list(messages), **fields}


def user(content) -> dict:
    return {"role": "user", "content": content}


@pytest.mark.parametrize(
    ("data", "tokens"),
    [
        (b"", 0),
        (b"a", 1),
        (b"abcd", 1),
        (b"abcde", 2),
        ("日本".encode(), 6),  # a byte a token: no byte-level tokenizer emits more
        ("ab日".encode(), 1 + 3),
        ("😀".encode(), 4),
    ],
)
def test_byte_tokens(data, tokens):
    assert byte_tokens(data) == tokens


def overhead(messages: int) -> int:
    return BOUND_PER_REQUEST + BOUND_PER_MESSAGE * messages


def test_the_bound_is_the_serialized_body_plus_overheads():
    body = chat(user("hello there"), max_tokens=5)
    size = len(orjson.dumps(body))
    assert chat_input_bound(body, 0) == (size + 3) // 4 + overhead(1)


def test_tools_functions_and_schemas_count_by_their_bytes():
    base = chat(user("hi"))
    tool = {"type": "function", "function": {"name": "f", "description": "d" * 4000}}
    schema = {"type": "json_schema", "json_schema": {"name": "s", "schema": {"x": "y" * 4000}}}
    function = {"name": "g", "description": "e" * 4000}
    for extra in ({"tools": [tool] * 3}, {"response_format": schema}, {"functions": [function]}):
        grown = chat_input_bound({**base, **extra}, 0) - chat_input_bound(base, 0)
        assert grown >= len(orjson.dumps(extra)) // 4


def test_escapes_and_number_spellings_cannot_hide_bytes():
    # A client may write CJK as \\u escapes and numbers short (1e15); the upstream gets
    # UTF-8 and the long spelling, and the bound counts what the upstream gets.
    raw = b'{"model":"m","messages":[{"role":"user","content":"\\u65e5\\u672c"}],' + (
        b'"tools":[{"type":"function","function":{"name":"f","parameters":{"enum":['
        + b",".join([b"1e15"] * 1000)
        + b"]}}}]}"
    )
    body = orjson.loads(raw)
    upstream = orjson.dumps(body)
    assert len(upstream) > 3 * len(raw)  # 1e15 is 1000000000000000.0 on the way out
    assert chat_input_bound(body, 0) >= byte_tokens(upstream)
    assert chat_input_bound(body, 0) >= (len(upstream) + 3) // 4 + 6  # CJK a byte a token


def test_images_by_url_and_stored_files():
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    stored = {"type": "file", "file": {"file_id": "file-abc"}}
    text = {"type": "text", "text": "look"}
    with_images = chat(user([text, image, image]))
    plain = chat(user([text]))
    grown = chat_input_bound(with_images, 0) - chat_input_bound(plain, 0)
    assert grown >= 2 * BOUND_PER_IMAGE
    assert chat_input_bound(chat(user([text, stored])), 128_000) >= 128_000


def test_embeddings_count_token_arrays_by_length():
    assert embedding_input_bound({"input": "abcd" * 10}) == (42 + 3) // 4 + BOUND_PER_REQUEST
    tokens = {"input": [[1] * 1000, [2] * 500]}
    assert embedding_input_bound(tokens) >= 1500
    assert embedding_input_bound({"input": [7] * 300}) >= 300


def test_n_and_the_output_cap():
    assert choices({}) == 1 and choices({"n": None}) == 1 and choices({"n": 128}) == 128
    small = model_config(
        "small", max_output_tokens=100, input_cost_per_1m=1000.0, output_cost_per_1m=1000.0
    )
    plan = [(small, target("p", "up"))]
    body = chat(user("hi"), n=128, max_tokens=100)
    input_tokens, cap, n, tokens = demand(plan, body)
    assert (cap, n, tokens) == (100, 128, input_tokens + 12_800)
    # $1000 per 1M: 128 x 100 output tokens alone are $12.80.
    assert largest_cost_nusd(plan, input_tokens, cap, n) == (input_tokens + 12_800) * 1000 * 1000
    no_cap = chat(user("hi"))
    input_tokens, cap, n, tokens = demand(plan, no_cap)
    assert (cap, n, tokens) == (None, 1, input_tokens + 100)  # the model's cap goes upstream


def test_the_dearest_input_price_is_reserved():
    claude = model_config(
        "c", input_cost_per_1m=3.0, cache_write_input_cost_per_1m=3.75, cached_input_cost_per_1m=0.3
    )
    assert claude.dearest_input_cost_per_1m == 3.75
    plan = [(claude, target("p", "up"))]
    assert largest_cost_nusd(plan, 1000, 0) == 3750 * 1000


def test_a_native_body_is_bounded_too():
    plan = [(model_config("c"), target("p", "up"))]
    chat_body = chat(user("hi"), max_tokens=10)
    native = {"model": "c", "max_tokens": 10, "messages": [user("x" * 40_000)]}
    alone, _, _, _ = demand(plan, chat_body)
    both, _, _, _ = demand(plan, chat_body, native)
    assert alone < 100 and both >= 10_000

"""No client input gives a 5xx: generated bodies for every route that takes one (hypothesis),
through Flask's test client against the live fake upstream.

Bodies mix plausible values with any JSON at all (huge and negative integers, floats,
control characters, deep nesting, wrong types) in every field, so most are refused and some
reach the fake upstream. The answer may be anything but a 5xx. Bodies are encoded with the
standard library (it writes integers past 64 bits and nesting orjson would refuse).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facade.settings import Settings
from tests.support import ADMIN_KEY, TEAM_KEY, admin_headers

# Bounded so the whole file runs in seconds: each example is one request or two.
EXAMPLES = 50
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a shared, loaded machine
    database=None,  # no .hypothesis directory in the tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
AUTH = {"Authorization": f"Bearer {TEAM_KEY}"}

INTEGERS = st.one_of(
    st.integers(-10, 10_000),
    st.sampled_from([0, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 2**64 + 1, -(2**63) - 1]),
    st.integers(),
)
TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "\x00", "a\n\x1b[2J", "\u2028", "\ud7ff", "9999-12-31", "auto"]),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), INTEGERS, st.floats(allow_nan=False, allow_infinity=False), TEXT
)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def deep(draw) -> object:
    """JSON nested from a few levels to past what orjson writes (254) and reads (1024)."""
    levels = draw(st.sampled_from([3, 60, 70, 130, 300, 1100]))
    node: object = draw(SCALARS)
    for _ in range(levels):
        node = {"x": node} if draw(st.booleans()) else [node]
    return node


ODD = st.one_of(ANY_JSON, deep())


def field(plausible: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly a plausible value, sometimes anything."""
    return st.one_of(plausible, plausible, plausible, plausible, ODD)


def body_of(fields: dict[str, st.SearchStrategy], **required: st.SearchStrategy):
    """A dict with `required` and any subset of `fields`, sometimes with an unknown field."""
    return st.fixed_dictionaries(
        {name: field(s) for name, s in required.items()},
        optional={name: field(s) for name, s in fields.items()},
    ).flatmap(
        lambda d: st.one_of(
            st.just(d),
            st.just(d),
            st.just(d),
            st.dictionaries(st.text(max_size=6), ANY_JSON, max_size=2).map(
                lambda extra: {**extra, **d}
            ),
        )
    )


MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool", "developer", "x"])},
    optional={
        "content": st.one_of(
            TEXT,
            st.none(),
            st.lists(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["text", "image_url"])},
                    optional={"text": TEXT, "image_url": ANY_JSON},
                ),
                max_size=3,
            ),
        ),
        "tool_calls": ANY_JSON,
        "tool_call_id": TEXT,
        "name": TEXT,
    },
)
SCHEMA = st.fixed_dictionaries(
    {"type": st.sampled_from(["json_schema", "json_object", "text"])},
    optional={"json_schema": st.fixed_dictionaries({"name": TEXT}, optional={"schema": ODD})},
)
TOOLS = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.just("function"),
            "function": st.fixed_dictionaries(
                {"name": TEXT}, optional={"parameters": ODD, "description": TEXT}
            ),
        }
    ),
    max_size=3,
)
CHAT = body_of(
    {
        "model": st.sampled_from(["gpt-test", "auto", "no-such-model", "secret-model"]),
        "messages": st.lists(MESSAGE, max_size=4),
        "stream": st.booleans(),
        "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans()}),
        "max_tokens": INTEGERS,
        "max_completion_tokens": INTEGERS,
        "n": INTEGERS,
        "seed": INTEGERS,
        "top_logprobs": INTEGERS,
        "logprobs": st.booleans(),
        "temperature": SCALARS,
        "top_p": SCALARS,
        "stop": st.one_of(TEXT, st.lists(TEXT, max_size=5)),
        "tools": TOOLS,
        "tool_choice": st.one_of(st.sampled_from(["auto", "none", "required"]), ANY_JSON),
        "response_format": SCHEMA,
        "logit_bias": st.dictionaries(TEXT, INTEGERS, max_size=3),
        "metadata": st.dictionaries(TEXT, TEXT, max_size=3),
        "user": TEXT,
    }
)
EMBEDDINGS = body_of(
    {
        "model": st.sampled_from(["gpt-test", "no-such-model"]),
        "input": st.one_of(TEXT, st.lists(TEXT, max_size=3), st.lists(INTEGERS, max_size=3)),
        "dimensions": INTEGERS,
        "encoding_format": st.sampled_from(["float", "base64", "hex"]),
    }
)
SMALL = st.one_of(st.integers(1, 10_000), INTEGERS)
KEY_FIELDS = {
    "models": st.lists(st.sampled_from(["*", "gpt-test", "ghost"]), max_size=2),
    "rpm": SMALL,
    "tpm": SMALL,
    "max_parallel": SMALL,
    "budget_usd": st.one_of(INTEGERS, st.floats(allow_nan=False, allow_infinity=False)),
    "budget_period": st.sampled_from(["daily", "weekly", "monthly", "total", "hourly"]),
    "expires_at": st.one_of(
        TEXT, st.sampled_from(["9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-14:00"])
    ),
    "metadata": st.dictionaries(TEXT, ANY_JSON, max_size=3),
}
NAME = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=20)
KEY_BODY = body_of(KEY_FIELDS, name=st.one_of(NAME, NAME, TEXT))
USAGE_QUERY = st.fixed_dictionaries(
    {},
    optional={
        "from": st.one_of(TEXT, st.sampled_from(["0001-01-01", "9999-12-31", "2026-02-30"])),
        "to": st.one_of(TEXT, st.sampled_from(["9999-12-31", "0001-01-05", "1970-01-01"])),
        "key_id": TEXT,
        "model": TEXT,
    },
)
RESPONSES = body_of(
    {
        "model": st.sampled_from(["gpt-test", "no-such-model"]),
        "input": st.one_of(TEXT, st.lists(ANY_JSON, max_size=3)),
        "instructions": TEXT,
        "max_output_tokens": INTEGERS,
        "temperature": SCALARS,
        "tools": st.lists(ANY_JSON, max_size=2),
        "text": st.fixed_dictionaries({}, optional={"format": SCHEMA}),
        "metadata": st.dictionaries(TEXT, TEXT, max_size=2),
        "store": st.booleans(),
        "stream": st.booleans(),
        "previous_response_id": TEXT,
    }
)
MESSAGES = body_of(
    {
        "model": st.sampled_from(["gpt-test", "no-such-model"]),
        "max_tokens": INTEGERS,
        "system": st.one_of(TEXT, st.lists(ANY_JSON, max_size=2)),
        "messages": st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["user", "assistant", "system"])},
                optional={"content": st.one_of(TEXT, st.lists(ANY_JSON, max_size=2))},
            ),
            max_size=3,
        ),
        "tools": st.lists(ANY_JSON, max_size=2),
        "stop_sequences": st.lists(TEXT, max_size=3),
        "temperature": SCALARS,
        "top_k": INTEGERS,
        "metadata": ANY_JSON,
        "stream": st.booleans(),
        "thinking": ANY_JSON,
    }
)


@pytest.fixture
def settings(tmp_path):
    return Settings.from_env(
        {}, database_url=f"sqlite:///{tmp_path}/facade.db", admin_key=ADMIN_KEY
    )


def post(client, path: str, body: object, headers: dict):
    data = json.dumps(body)  # the standard library writes what orjson would refuse
    resp = client.post(path, data=data, headers={**headers, "Content-Type": "application/json"})
    resp.get_data()  # a stream runs to its end here
    return resp


def no_5xx(resp, body: object) -> None:
    assert resp.status_code < 500, (resp.status_code, resp.get_data()[:500], body)


@SETTINGS
@given(body=CHAT)
def test_chat_bodies(client, body):
    for path in ("/api/v1/chat/completions", "/v1/chat/completions"):
        no_5xx(post(client, path, body, AUTH), body)


@SETTINGS
@given(body=EMBEDDINGS)
def test_embeddings_bodies(client, body):
    no_5xx(post(client, "/api/v1/embeddings", body, AUTH), body)


@SETTINGS
@given(body=RESPONSES)
def test_responses_bodies(client, body):
    no_5xx(post(client, "/v1/responses", body, AUTH), body)


@SETTINGS
@given(body=MESSAGES)
def test_anthropic_messages_bodies(client, body):
    no_5xx(post(client, "/v1/messages", body, {"x-api-key": TEAM_KEY}), body)


@SETTINGS
@given(create=KEY_BODY, update=KEY_BODY)
def test_admin_key_bodies(client, create, update):
    resp = post(client, "/api/v1/admin/keys", create, admin_headers())
    no_5xx(resp, create)
    if resp.status_code != 201:
        resp = post(client, "/api/v1/admin/keys", {"name": "target"}, admin_headers())
    key_id = resp.get_json()["data"]["id"]
    data = json.dumps(update)
    patched = client.patch(
        f"/api/v1/admin/keys/{key_id}",
        data=data,
        headers={**admin_headers(), "Content-Type": "application/json"},
    )
    no_5xx(patched, update)
    no_5xx(client.get(f"/api/v1/admin/keys/{key_id}", headers=admin_headers()), key_id)


@SETTINGS
@given(query=USAGE_QUERY)
def test_usage_queries(client, query):
    no_5xx(client.get("/api/v1/admin/usage", query_string=query, headers=admin_headers()), query)

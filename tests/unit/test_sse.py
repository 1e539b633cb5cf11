"""The SSE decoder against every way a read can split the bytes."""

from __future__ import annotations

import itertools
import random

import orjson
import pytest

from facade.providers.sse import SSEDecoder, SSEEvent, decode_events

PAYLOADS = [
    {"text": "plain"},
    {"text": "日本語 and emoji 😀"},
    {"text": "line\u2028separator\u2029para"},
    {"text": 'quote " backslash \\ newline \\n'},
]


def encode(payloads, newline=b"\n") -> bytes:
    out = b""
    for p in payloads:
        out += b"data: " + orjson.dumps(p) + newline + newline
    return out + b"data: [DONE]" + newline + newline


def decode_all(chunks) -> list[SSEEvent]:
    return list(decode_events(chunks))


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_single_split_point_gives_the_same_events(newline):
    data = encode(PAYLOADS, newline)
    expected = [orjson.dumps(p) for p in PAYLOADS] + [b"[DONE]"]
    for cut in range(len(data) + 1):
        events = decode_all([data[:cut], data[cut:]])
        assert [e.data for e in events] == expected, f"split at {cut}"


def test_one_byte_at_a_time_with_crlf():
    data = encode(PAYLOADS, b"\r\n")
    events = decode_all(data[i : i + 1] for i in range(len(data)))
    assert [orjson.loads(e.data) for e in events[:-1]] == PAYLOADS


def test_random_splits_keep_utf8_whole():
    data = encode(PAYLOADS * 5, b"\r\n")
    rng = random.Random(7)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(data)), 12))
        chunks = [data[a:b] for a, b in itertools.pairwise([0, *cuts, len(data)])]
        events = decode_all(chunks)
        assert [orjson.loads(e.data) for e in events[:-1]] == PAYLOADS * 5


def test_u2028_is_not_a_line_break():
    event = decode_all([b'data: {"a": "x\xe2\x80\xa8y"}\n\n'])[0]
    assert orjson.loads(event.data) == {"a": "x\u2028y"}


def test_event_names_comments_multiline_data_and_bom():
    raw = b'\xef\xbb\xbf: keep-alive\n\nevent: message_start\ndata: {"a":\ndata: 1}\n\n'
    events = decode_all([raw[:2], raw[2:]])
    assert events == [SSEEvent("message_start", b'{"a":\n1}')]


def test_field_without_space_and_unknown_fields():
    events = decode_all([b"data:{}\nid: 3\nretry: 10\nfoo: bar\n\n"])
    assert events == [SSEEvent(None, b"{}")]


def test_unterminated_last_event_is_dropped():
    assert decode_all([b'data: {}\n\ndata: {"cut']) == [SSEEvent(None, b"{}")]


def test_blank_lines_without_data_dispatch_nothing():
    decoder = SSEDecoder()
    assert decoder.feed(b"\n\n\r\n") == []
    assert decoder.feed(b"") == []

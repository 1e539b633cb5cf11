"""The response cache's Redis side against the real test Redis: the small RESP client, the
capped index, TTLs, batched writes, and an unreachable Redis being a miss."""

from __future__ import annotations

import socket
import time

import pytest
import redis

from facade.cache.backends import RedisBackend
from facade.cache.resp import RespClient, RespError, pack
from tests.support import redis_namespace


@pytest.fixture
def ns():
    with redis_namespace() as (url, prefix):
        client = redis.Redis.from_url(url)
        yield url, prefix, client
        client.close()


def test_pack_is_resp_arrays_of_bulk_strings():
    assert pack(("GET", b"k")) == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    assert pack(("SET", "é", 12)) == b"*3\r\n$3\r\nSET\r\n$2\r\n\xc3\xa9\r\n$2\r\n12\r\n"


def test_the_client_reads_every_reply_kind(ns):
    url, prefix, direct = ns
    client = RespClient(url, 1.0)
    try:
        assert client.call("GET", prefix + "none") is None
        value = bytes(range(256)) * 300  # binary, larger than one read
        assert client.call("SET", prefix + "k", value) == b"OK"
        assert client.call("GET", prefix + "k") == value
        assert client.call("INCR", prefix + "n") == 1
        assert client.call("EVAL", "return {1, 'a', ARGV[1]}", 0, "x") == [1, b"a", b"x"]
        with pytest.raises(RespError, match="NOSCRIPT"):
            client.call("EVALSHA", "0" * 40, 0)
        assert client.call("GET", prefix + "n") == b"1"  # still in step after an error reply
        replies = client.pipeline([("INCR", prefix + "n"), ("EVALSHA", "0" * 40, 0), ("PING",)])
        assert replies[0] == 2 and isinstance(replies[1], RespError) and replies[2] == b"PONG"
    finally:
        client.close()


def test_the_url_gives_database_and_credentials():
    client = RespClient("redis://user:p%40ss@cache.internal:6380/3", 1.0)
    assert (client.host, client.port, client.db) == ("cache.internal", 6380, 3)
    assert (client.username, client.password) == ("user", "p@ss")
    with pytest.raises(ValueError, match="scheme"):
        RespClient("http://localhost", 1.0)


def test_entries_expire_and_the_index_caps_them(ns):
    url, prefix, direct = ns
    backend = RedisBackend(url, prefix, ttl_s=60, max_entries=3)
    try:
        for i in range(5):
            backend.put(f"d{i}", b"v%d" % i)
            backend.flush()
        assert [backend.get(f"d{i}") for i in range(5)] == [None, None, b"v2", b"v3", b"v4"]
        assert direct.zcard(f"{prefix}cache:index") == 3
        assert 0 < direct.pttl(f"{prefix}cache:d4") <= 60_000
    finally:
        backend.close()
    short = RedisBackend(url, prefix, ttl_s=0.2, max_entries=3)
    try:
        short.put("e", b"1")
        short.flush()
        assert short.get("e") == b"1"
        time.sleep(0.3)
        assert short.get("e") is None
    finally:
        short.close()


def test_writes_are_batched_and_land_without_a_flush(ns):
    url, prefix, direct = ns
    backend = RedisBackend(url, prefix, ttl_s=60, max_entries=100)
    try:
        for i in range(20):
            backend.put(f"b{i}", b"x")
        deadline = time.monotonic() + 5
        while direct.zcard(f"{prefix}cache:index") < 20:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        backend.close()


def test_an_unreachable_redis_is_a_quick_miss():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = RedisBackend(f"redis://127.0.0.1:{port}/0", "x:", ttl_s=60, max_entries=10)
    started = time.monotonic()
    assert backend.get("a") is None
    backend.put("a", b"1")
    backend.flush()
    assert backend.get("a") is None  # backed off: not even tried
    assert time.monotonic() - started < 1
    backend.close()

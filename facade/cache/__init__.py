"""The response cache: an identical request answered again without an upstream call.

A pipeline part, keyed on the internal request (the validated body every route hands the
pipeline), so every route on the pipeline gets it. It applies when the config has a `cache`
section and the key or every model the request may be routed to has `cache: true`. An entry's
digest is BLAKE2b over (kind, scope, the body without `stream`, `stream_options` and `user`,
keys sorted): the scope is the key's id, so two keys never share an entry, unless the
operator sets `cache.scope: global`. Only complete, successful answers are stored, with the
metrics they were measured with; a hit answers them with `cache_hit` true and no cost.

The request's `Cache-Control: no-cache` skips the lookup (the answer is still stored);
`no-store` neither reads nor writes. `outcome.cache` says what happened: "hit", "miss" or
"skip" (bypassed, or a body that cannot be keyed), None when the cache does not apply.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import orjson

from ..config import CacheConfig, ModelConfig, TargetConfig
from ..keys import ApiKey
from ..metering import Meter
from ..outcome import Outcome
from .backends import Backend, MemoryBackend, RedisBackend

log = logging.getLogger("facade.cache")

CHAT = b"chat"
EMBEDDINGS = b"embeddings"
ASIDE = frozenset({"stream", "stream_options", "user"})  # not part of an entry's identity
NATIVE_ASIDE = frozenset({"stream", "metadata"})  # the same, in a vendor's own body
_SORTED = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


@dataclass(slots=True)
class Lookup:
    """One request's dealings with the cache: where its answer goes, and the hit if any."""

    digest: str
    answer: dict | None  # a cached answer (its original `metrics` included), or None


def cache_directives(header: str | None) -> tuple[bool, bool]:
    """(read, write) from a request's Cache-Control header."""
    if not header:
        return True, True
    names = {part.split("=", 1)[0].strip().lower() for part in header.split(",")}
    if "no-store" in names:
        return False, False
    if "no-cache" in names:
        return False, True
    return True, True


def entry_digest(kind: bytes, scope: str, body: dict, native: dict | None = None) -> str:
    """The entry's name: a hash of (kind, scope, canonical body); TypeError if not JSON.

    A client speaking a vendor's own protocol (`native`, e.g. Anthropic Messages) may ask for
    more than the internal body says (thinking, cache_control blocks): its own body is part
    of the name too, so it never shares an entry with a differently-asked request.
    """
    canonical = {name: value for name, value in body.items() if name not in ASIDE}
    digest = hashlib.blake2b(kind, digest_size=20)
    digest.update(b"\0" + scope.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(orjson.dumps(canonical, option=_SORTED))
    if native is not None:
        own = {name: value for name, value in native.items() if name not in NATIVE_ASIDE}
        digest.update(b"\0native\0" + orjson.dumps(own, option=_SORTED))
    return digest.hexdigest()


def hit_metrics(original: dict, meter: Meter) -> dict:
    """A hit's metrics: the original's tokens, provider and model; no cost; its own timing.

    The pace figures (inter-token latency, tokens per second) describe an upstream
    generating; a hit generates nothing, so they are 0.
    """
    meter.finish()
    latency = meter.end - meter.start
    ttft = latency if meter.first is None else meter.first - meter.start
    metrics = dict(original)
    metrics.update(
        cost_usd=0.0,
        cache_hit=True,
        attempts=0,
        latency_s=round(latency, 6),
        time_to_first_token_s=round(ttft, 6),
        inter_token_latency_s=0.0,
        tokens_per_second=0.0,
    )
    return metrics


class ResponseCache:
    def __init__(self, config: CacheConfig, backend: Backend) -> None:
        self.config = config
        self.backend = backend
        self.global_scope = config.scope == "global"
        # One answer may take at most an eighth of the memory bound, so it cannot flush the rest.
        self.max_value = max(1, config.max_bytes // 8)

    @classmethod
    def build(
        cls, config: CacheConfig | None, redis_url: str | None, redis_prefix: str
    ) -> ResponseCache | None:
        """The cache the config asks for (Redis when there is one), or None when it is off."""
        if config is None:
            return None
        if redis_url:
            backend = RedisBackend(redis_url, redis_prefix, config.ttl_s, config.max_entries)
        else:
            backend = MemoryBackend(config.ttl_s, config.max_entries, config.max_bytes)
        return cls(config, backend)

    def lookup(
        self,
        kind: bytes,
        body: dict,
        key: ApiKey,
        plan: list[tuple[ModelConfig, TargetConfig]],
        outcome: Outcome,
        native: dict | None = None,
    ) -> Lookup | None:
        """Look the request up; None when its answer is neither read nor written here."""
        if not key.cache and not all(model.cache for model, _ in plan):
            return None
        read, write = cache_directives(outcome.cache_control)
        outcome.cache = "skip"
        if not write:
            return None
        try:
            digest = entry_digest(kind, "*" if self.global_scope else key.id, body, native)
        except TypeError:  # e.g. an integer past 64 bits in a free-form field
            return None
        if not read:
            return Lookup(digest, None)
        answer = self._read(digest)
        outcome.cache = "miss" if answer is None else "hit"
        return Lookup(digest, answer)

    def _read(self, digest: str) -> dict | None:
        raw = self.backend.get(digest)
        if raw is None:
            return None
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(answer, dict) or not isinstance(answer.get("metrics"), dict):
            return None
        return answer

    def store(self, lookup: Lookup, answer: dict) -> None:
        """Keep a complete, successful answer (with its `metrics`) for the TTL."""
        try:
            raw = orjson.dumps(answer, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            return
        if len(raw) <= self.max_value:
            self.backend.put(lookup.digest, raw)

    def close(self) -> None:
        self.backend.close()

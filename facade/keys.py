"""API keys as the pipeline sees them, and the config-file keyring.

Keys are looked up by their SHA-256: the plaintext is never kept after start-up, and a
lookup costs one hash and one dict access.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .config import Config
from .errors import AuthenticationError, PermissionDeniedError

PREFIX_LEN = 8


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).hexdigest()


def key_prefix(plaintext: str) -> str:
    return plaintext[:PREFIX_LEN]


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    prefix: str
    models: tuple[str, ...]
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    max_parallel: int | None = None  # none: the config's limits.max_parallel_per_key
    budget_period: str = "monthly"
    expires_at: datetime | None = None
    metadata: dict = field(default_factory=dict)
    source: str = "config"
    cache: bool = False  # answer repeated requests from the response cache

    def allows(self, model: str) -> bool:
        """Default deny: a key with no list may use no model; "*" allows all."""
        return "*" in self.models or model in self.models

    def check_model(self, model: str) -> None:
        if not self.allows(model):
            raise PermissionDeniedError(f"this key may not use the model '{model}'", param="model")

    def expired(self, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (now or datetime.now(UTC)) >= self.expires_at


def bearer_token(header: str | None) -> str:
    """The key from `Authorization: Bearer <key>`; 401 for anything else."""
    if not header:
        raise AuthenticationError("missing API key: send Authorization: Bearer <key>")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("malformed Authorization header: expected Bearer <key>")
    return token


class ConfigKeyRing:
    """The keys declared in the config file, by hash."""

    def __init__(self, config: Config):
        self._by_hash: dict[str, ApiKey] = {}
        for declared in config.keys:
            digest = hash_key(declared.key)
            self._by_hash[digest] = ApiKey(
                id=f"cfg-{digest[:12]}",
                name=declared.name,
                prefix=key_prefix(declared.key),
                models=declared.models,
                rpm=declared.rpm,
                tpm=declared.tpm,
                budget_usd=declared.budget_usd,
                max_parallel=declared.max_parallel,
                budget_period=declared.budget_period,
                metadata=dict(declared.metadata),
                cache=declared.cache,
            )

    def lookup(self, digest: str) -> ApiKey | None:
        return self._by_hash.get(digest)

    def all(self) -> list[ApiKey]:
        return list(self._by_hash.values())


def constant_time_equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))

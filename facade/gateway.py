"""Everything one worker needs to answer requests, built once from the validated config."""

from __future__ import annotations

import logging

from .accounting import Accounting, NoAccounting, StoreAccounting
from .cache import ResponseCache
from .config import Config
from .errors import AuthenticationError, UnavailableError
from .keys import ApiKey, ConfigKeyRing, bearer_token, hash_key
from .pipeline import ChatPipeline, PipelineOptions
from .providers import Provider, build_provider
from .router import Router
from .settings import Settings
from .store import Store
from .store.health import Dependencies
from .store.keystore import KeyStore
from .store.responses import ResponseStore

log = logging.getLogger("facade")


class Gateway:
    def __init__(
        self,
        config: Config,
        settings: Settings,
        accounting: Accounting | None = None,
        store: Store | None = None,
    ):
        self.config = config
        self.settings = settings
        self.providers: dict[str, Provider] = {
            name: build_provider(p, settings.worker_connections)
            for name, p in config.providers.items()
        }
        self.router = Router(config)
        self.keyring = ConfigKeyRing(config)
        self.store = store
        self.keystore: KeyStore | None = None
        self.responses: ResponseStore | None = None  # stored Responses API answers
        # Shared stores this worker reaches: shown by /readyz and /metrics, never failing them.
        self.dependencies = Dependencies()
        if store is not None:
            self.dependencies.add(store.dialect, store.ping)
            self.keystore = KeyStore(store, set(config.models))
            self.responses = ResponseStore(store, retention_days=settings.usage_retention_days)
            accounting = accounting or StoreAccounting(
                store, settings, self.dependencies, config.max_parallel_per_key
            )
        self.accounting: Accounting = accounting or NoAccounting()
        # The admin key is never a chat key, even if a config key has the same text.
        self._admin_digest = hash_key(settings.admin_key) if settings.admin_key else None
        self.cache = ResponseCache.build(config.cache, settings.redis_url, settings.redis_prefix)
        self.pipeline = ChatPipeline(
            self.router,
            self.accounting,
            self.providers,
            PipelineOptions(
                retry_after_cap_s=config.retry_after_cap_s,
                sse_keepalive_s=settings.sse_keepalive_s,
                log_prompts=settings.log_prompts,
            ),
            self.cache,
        )
        self.draining = False
        self.started = False  # set once the app around this gateway is fully built

    def authenticate(self, authorization: str | None) -> ApiKey:
        token = bearer_token(authorization)
        digest = hash_key(token)
        key = self.keyring.lookup(digest)  # config keys: a dict access, no store cost
        if key is None and self.keystore is not None and digest != self._admin_digest:
            key = self._stored_key(digest)
        if key is None or digest == self._admin_digest:
            raise AuthenticationError("invalid API key")
        if key.expired():
            raise AuthenticationError("this API key has expired")
        return key

    def _stored_key(self, digest: str) -> ApiKey | None:
        try:
            return self.keystore.lookup(digest)
        except AuthenticationError:
            raise
        except Exception as err:
            self.dependencies.report(self.store.dialect, False)
            log.warning("key lookup failed: %s", type(err).__name__)
            raise UnavailableError("the key store is unreachable; try again") from None

    def close(self) -> None:
        self.dependencies.close()
        for provider in self.providers.values():
            provider.close()
        if self.cache is not None:
            self.cache.close()
        close = getattr(self.accounting, "close", None)
        if close is not None:
            close()
        if self.store is not None:
            self.store.close()

    def readiness_problem(self) -> str | None:
        """Why this instance cannot serve now, or None. Shared stores are not asked: their
        state is in `dependencies` (an outage of one would fail every replica at once)."""
        if self.draining:
            return "draining: this instance is shutting down"
        if not self.started:
            return "starting: this instance is not serving yet"
        if self.config is None:
            return "no configuration is loaded"
        return None

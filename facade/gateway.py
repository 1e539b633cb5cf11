"""Everything one worker needs to answer requests, built once from the validated config."""

from __future__ import annotations

import logging

from .accounting import Accounting, NoAccounting
from .chat import ChatPipeline
from .config import Config
from .errors import AuthenticationError
from .keys import ApiKey, ConfigKeyRing, bearer_token, hash_key
from .providers import Provider, build_provider
from .router import Router
from .settings import Settings

log = logging.getLogger("facade")


class Gateway:
    def __init__(self, config: Config, settings: Settings, accounting: Accounting | None = None):
        self.config = config
        self.settings = settings
        self.providers: dict[str, Provider] = {
            name: build_provider(p, settings.worker_connections)
            for name, p in config.providers.items()
        }
        self.router = Router(config)
        self.keyring = ConfigKeyRing(config)
        self.accounting: Accounting = accounting or NoAccounting()
        self.chat = ChatPipeline(self)
        self.draining = False

    def authenticate(self, authorization: str | None) -> ApiKey:
        token = bearer_token(authorization)
        key = self.keyring.lookup(hash_key(token))
        if key is None:
            raise AuthenticationError("invalid API key")
        if key.expired():
            raise AuthenticationError("this API key has expired")
        return key

    def close(self) -> None:
        for provider in self.providers.values():
            provider.close()

    def readiness_problem(self) -> str | None:
        """Why this instance cannot serve now, or None."""
        check = getattr(self.accounting, "readiness_problem", None)
        return check() if check else None

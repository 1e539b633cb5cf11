"""Provider kinds, chosen by the config's `kind`."""

from __future__ import annotations

import importlib

from ..config import ProviderConfig
from .base import ChatCall, ChunkStream, EmbeddingCall, Provider
from .simulator import SimulatorProvider

__all__ = ["ChatCall", "ChunkStream", "EmbeddingCall", "Provider", "build_provider"]

# kind -> protocol module (pure translation), served by HTTPProvider.
HTTP_PROTOCOLS = {
    "openai": "facade.providers.openai",
    "azure": "facade.providers.azure",
    "anthropic": "facade.providers.anthropic",
    "gemini": "facade.providers.gemini",
}


def build_provider(config: ProviderConfig, pool_size: int) -> Provider:
    if config.kind == "simulator":
        return SimulatorProvider(config)
    from .http import HTTPProvider

    protocol = importlib.import_module(HTTP_PROTOCOLS[config.kind])
    return HTTPProvider(config, protocol, pool_size)

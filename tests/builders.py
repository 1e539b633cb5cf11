"""Parts for tests that need a provider, a model or a whole pipeline without a server.

Every config field has a neutral default, so a test names only what it is about (and a field
added to the config later needs one change here, not one per test module).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from facade.config import ModelConfig, ProviderConfig, TargetConfig, parse_config
from facade.pipeline import ChatPipeline, PipelineOptions
from facade.providers import build_provider
from facade.router import Router
from tests.support import base_config, upstream_env


def model_config(name: str = "model", **fields: Any) -> ModelConfig:
    values: dict[str, Any] = {
        "name": name,
        "targets": (),
        "input_cost_per_1m": 0.0,
        "output_cost_per_1m": 0.0,
        "context_window": 128000,
        "max_output_tokens": 4096,
        "capabilities": frozenset(),
    }
    values.update(fields)
    return ModelConfig(**values)


def provider_config(name: str, kind: str, **fields: Any) -> ProviderConfig:
    values: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "base_url": None,
        "api_key": None,
        "connect_timeout_s": 1.0,
        "read_timeout_s": 1.0,
        "headers": {},
        "api_version": None,
        "anthropic_version": "2023-06-01",
        "ttft_s": 0.0,
        "tokens_per_s": 1.0,
    }
    values.update(fields)
    return ProviderConfig(**values)


def target(provider: str, model: str, weight: float = 1.0) -> TargetConfig:
    return TargetConfig(provider=provider, model=model, weight=weight)


class RecordingAdmission:
    def __init__(self, log: list) -> None:
        self.log = log

    def settle(self, model: ModelConfig, metrics: dict, request_id: str, status: int = 200):
        self.log.append(("settle", model.name, request_id, status, metrics["output_tokens"]))

    def release(self, error: BaseException | None = None) -> None:
        self.log.append(("release", type(error).__name__))


class RecordingAccounting:
    """The accounting interface, keeping what the pipeline asked of it (admit, then settle
    or release), so a test can check the pipeline's half of the bargain without a store."""

    def __init__(self) -> None:
        self.log: list = []

    def admit(
        self, key, plan, body, request_id, session_id=None, native=None, client_request_id=None
    ) -> RecordingAdmission:
        self.log.append(("admit", [(m.name, t.model) for m, t in plan], request_id))
        return RecordingAdmission(self.log)


@contextmanager
def pipeline_over(
    fake_url: str, **config_overrides: Any
) -> Iterator[tuple[ChatPipeline, RecordingAccounting]]:
    """A pipeline with real providers on the live fake upstream (tests.support.base_config)."""
    raw = {**base_config(fake_url), **config_overrides}
    config = parse_config(raw, environ=upstream_env())
    providers = {name: build_provider(p, 10) for name, p in config.providers.items()}
    accounting = RecordingAccounting()
    options = PipelineOptions(retry_after_cap_s=0.1, sse_keepalive_s=10.0, log_prompts=False)
    try:
        yield ChatPipeline(Router(config), accounting, providers, options), accounting
    finally:
        for provider in providers.values():
            provider.close()

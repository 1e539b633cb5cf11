"""Config objects for tests that need a provider or a model without parsing a YAML file.

Every field has a neutral default, so a test names only what it is about (and a field added
to the config later needs one change here, not one per test module).
"""

from __future__ import annotations

from typing import Any

from facade.config import ModelConfig, ProviderConfig, TargetConfig


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

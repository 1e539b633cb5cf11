"""Which model and which target answer a request: auto selection, weights, cooldowns.

Health is kept per worker process: each worker learns of a failing target from its own
calls, which is quick under load and needs no shared store on the request path.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass

from .config import Config, ModelConfig, TargetConfig
from .errors import (
    InvalidRequestError,
    ModelNotFoundError,
    PermissionDeniedError,
    UnavailableError,
    UpstreamError,
)
from .estimates import estimate_messages, output_cap
from .keys import ApiKey

log = logging.getLogger("facade.router")
AUTO = "auto"
_EWMA = 0.2


@dataclass(slots=True)
class TargetHealth:
    consecutive_failures: int = 0
    cooled_until: float = 0.0
    error_rate: float = 0.0  # exponentially weighted, 0..1
    latency_s: float | None = None  # exponentially weighted, successes only

    def cooling(self, now: float) -> bool:
        return self.cooled_until > now


def needs_of(body: dict) -> set[str]:
    """The capabilities a request needs from a model."""
    needs = set()
    if body.get("tools") or body.get("functions"):
        needs.add("tools")
    fmt = body.get("response_format")
    if fmt and fmt.get("type") in ("json_object", "json_schema"):
        needs.add("json")
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, list) and any(p.get("type") == "image_url" for p in content):
            needs.add("images")
            break
    return needs


class Router:
    def __init__(self, config: Config, rng: random.Random | None = None):
        self.config = config
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self.health: dict[tuple[str, str], TargetHealth] = {
            (t.provider, t.model): TargetHealth() for m in config.models.values() for t in m.targets
        }
        self.model_latency: dict[str, float] = {}

    # -- which models -------------------------------------------------------------------
    def models_for(self, name: str | None, key: ApiKey, body: dict) -> list[ModelConfig]:
        """The model asked for, or the auto selector's candidates in the order to try."""
        if name is None or name == AUTO:
            return self.auto_candidates(key, body)
        model = self.config.models.get(name)
        if model is None:
            raise ModelNotFoundError(f"the model '{name}' does not exist", param="model")
        key.check_model(name)
        return [model]

    def embedding_model(self, name: str, key: ApiKey) -> ModelConfig:
        """Embeddings name their model: the auto selector chooses among chat models."""
        if name == AUTO:
            raise InvalidRequestError("embeddings need a model name, not 'auto'", param="model")
        return self.models_for(name, key, {})[0]

    def auto_candidates(self, key: ApiKey, body: dict) -> list[ModelConfig]:
        names = self.config.auto_candidates or tuple(self.config.models)
        allowed = [self.config.models[n] for n in names if key.allows(n)]
        if not allowed:
            raise PermissionDeniedError(
                "this key may use none of the auto selector's candidates", param="model"
            )
        needs = needs_of(body)
        prompt = estimate_messages(body["messages"])
        cap = output_cap(body) or 1
        fitting = [
            m for m in allowed if needs <= m.capabilities and prompt + cap <= m.context_window
        ]
        if not fitting:
            what = ", ".join(sorted(needs)) or "none"
            raise InvalidRequestError(
                f"no auto candidate fits this request (about {prompt} prompt tokens plus "
                f"{cap} output; needs: {what})",
                param="model",
            )
        strategy = self.config.auto_strategy
        if strategy == "cheapest":
            fitting.sort(key=lambda m: m.input_cost_per_1m * prompt + m.output_cost_per_1m * cap)
        elif strategy == "fastest":
            # Unmeasured models sort first so that each gets observed.
            fitting.sort(key=lambda m: self.model_latency.get(m.name, 0.0))
        return fitting

    # -- vendor extras ------------------------------------------------------------------
    def check_extras(self, extras: list[str]) -> None:
        """A name no provider lists in `passthrough_params` is a typo: 400 naming it."""
        providers = self.config.providers.values()
        for name in extras:
            if not any(name in p.passthrough_params for p in providers):
                raise InvalidRequestError(f"{name}: Unknown field.", param=name)

    def accepting_extras(self, plan: list, extras: list[str]) -> list:
        """The (model, target) pairs whose provider lists every extra.

        The others are skipped, fallbacks included: sending the request there would drop the
        extra silently. None left is a 400 naming the extra.
        """
        providers = self.config.providers
        kept = [
            (model, target)
            for model, target in plan
            if all(n in providers[target.provider].passthrough_params for n in extras)
        ]
        if not kept:
            name = next(
                n
                for n in extras
                if not all(n in providers[t.provider].passthrough_params for _, t in plan)
            )
            models = ", ".join(dict.fromkeys(m.name for m, _ in plan))
            raise InvalidRequestError(
                f"{name}: no provider of the model {models} lists it in passthrough_params",
                param=name,
            )
        return kept

    # -- which targets ------------------------------------------------------------------
    def plan(self, model: ModelConfig) -> list[TargetConfig]:
        """Targets in the order to try: the first drawn by weight, the rest by weight."""
        now = time.monotonic()
        ready = [t for t in model.targets if not self.health[(t.provider, t.model)].cooling(now)]
        if not ready:
            raise UnavailableError(
                f"every target of the model '{model.name}' is cooling down; retry shortly"
            )
        if len(ready) == 1:
            return ready
        total = sum(t.weight for t in ready)
        pick = self._rng.random() * total
        for first in ready:
            pick -= first.weight
            if pick < 0:
                break
        rest = sorted((t for t in ready if t is not first), key=lambda t: -t.weight)
        return [first, *rest]

    def succeeded(self, model: ModelConfig, target: TargetConfig, latency_s: float) -> None:
        h = self.health[(target.provider, target.model)]
        with self._lock:
            h.consecutive_failures = 0
            h.error_rate *= 1 - _EWMA
            h.latency_s = (
                latency_s
                if h.latency_s is None
                else h.latency_s + _EWMA * (latency_s - h.latency_s)
            )
            old = self.model_latency.get(model.name)
            self.model_latency[model.name] = (
                latency_s if old is None else old + _EWMA * (latency_s - old)
            )

    def failed(self, target: TargetConfig, err: UpstreamError) -> None:
        h = self.health[(target.provider, target.model)]
        with self._lock:
            h.error_rate += _EWMA * (1 - h.error_rate)
            if not err.retryable:
                return  # the caller's fault, not the target's
            h.consecutive_failures += 1
            if h.consecutive_failures >= self.config.failures_to_cool:
                h.cooled_until = time.monotonic() + self.config.cooldown_s
                h.consecutive_failures = 0
                log.warning(
                    "target %s/%s cools down for %.0f s after repeated failures",
                    target.provider,
                    target.model,
                    self.config.cooldown_s,
                )

    def provider_health(self, provider: str) -> dict:
        now = time.monotonic()
        rows = [h for (p, _), h in self.health.items() if p == provider]
        return {
            "cooling_down": any(h.cooling(now) for h in rows),
            "error_rate": round(max((h.error_rate for h in rows), default=0.0), 4),
        }

"""The YAML config: read once at start, `${VAR}` expanded, validated, frozen into dataclasses.

A bad file raises `ConfigError` whose message names the bad key (`models[1].targets[0].provider`),
so the operator can fix it without reading a traceback.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError, fields, validate, validates_schema

from .schemas.chat_request import CHAT_FIELDS
from .schemas.fields import StrictSchema, printable
from .settings import Settings
from .telemetry.logs import warn_demo
from .validation import flatten_errors

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")
PROVIDER_KINDS = ("openai", "azure", "anthropic", "gemini", "simulator")
BUDGET_PERIODS = ("daily", "weekly", "monthly", "total")
AUTO_STRATEGIES = ("cheapest", "fastest", "priority")
# Azure OpenAI's latest dated GA data-plane version, used when a provider names none.
AZURE_DEFAULT_API_VERSION = "2024-10-21"
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
CACHE_SCOPES = ("key", "global")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """The config file cannot be used; the message names the key."""


_money = {"validate": validate.Range(min=0)}


class TimeoutSchema(StrictSchema):
    connect = fields.Float(load_default=5.0, validate=validate.Range(min=0, min_inclusive=False))
    read = fields.Float(load_default=120.0, validate=validate.Range(min=0, min_inclusive=False))


class ProviderSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    kind = fields.String(required=True, validate=validate.OneOf(PROVIDER_KINDS))
    base_url = fields.URL(require_tld=False, schemes={"http", "https"}, load_default=None)
    api_key = fields.String(load_default=None)
    timeout_s = fields.Nested(TimeoutSchema, load_default=lambda: TimeoutSchema().load({}))
    headers = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    api_version = fields.String(load_default=None)  # azure; AZURE_DEFAULT_API_VERSION if unset
    # Vendor extras (vLLM's min_p, chat_template_kwargs, ...) sent to this provider as given.
    passthrough_params = fields.List(
        fields.String(validate=validate.Regexp(_PARAM_NAME, error="Not a parameter name.")),
        load_default=list,
    )
    anthropic_version = fields.String(load_default="2023-06-01")  # anthropic
    ttft_s = fields.Float(load_default=0.25, validate=validate.Range(min=0))  # simulator
    tokens_per_s = fields.Float(load_default=40.0, validate=validate.Range(min=0.1))  # simulator

    @validates_schema
    def _per_kind(self, data: dict, **_: Any) -> None:
        if data["kind"] != "simulator" and not data.get("base_url"):
            raise ValidationError("required for this provider kind", "base_url")
        for name in data["passthrough_params"]:
            if name in CHAT_FIELDS:
                raise ValidationError(
                    f"{name!r} is a chat parameter already; list only vendor extras",
                    "passthrough_params",
                )


class TargetSchema(StrictSchema):
    provider = fields.String(required=True)
    model = fields.String(required=True, validate=validate.Length(min=1))
    weight = fields.Float(load_default=1.0, validate=validate.Range(min=0, min_inclusive=False))


class ModelSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=128))
    targets = fields.List(fields.Nested(TargetSchema), required=True, validate=validate.Length(1))
    input_cost_per_1m = fields.Float(load_default=0.0, **_money)
    # Input read from / written to the provider's prompt cache; default: the input price.
    cached_input_cost_per_1m = fields.Float(load_default=None, **_money)
    cache_write_input_cost_per_1m = fields.Float(load_default=None, **_money)
    output_cost_per_1m = fields.Float(load_default=0.0, **_money)
    context_window = fields.Integer(load_default=8192, validate=validate.Range(min=1))
    # Output cap used when a request gives none (budgets reserve it; anthropic requires one).
    max_output_tokens = fields.Integer(load_default=4096, validate=validate.Range(min=1))
    capabilities = fields.List(
        fields.String(validate=validate.OneOf(("tools", "images", "json"))),
        load_default=lambda: ["tools", "json"],
    )
    cache = fields.Boolean(load_default=False)  # the response cache, for every key


class AutoSchema(StrictSchema):
    candidates = fields.List(fields.String(), load_default=list)
    strategy = fields.String(load_default="priority", validate=validate.OneOf(AUTO_STRATEGIES))


class KeySchema(StrictSchema):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=128), printable])
    key = fields.String(required=True, validate=validate.Length(min=4, max=256))
    models = fields.List(fields.String(), load_default=list)
    rpm = fields.Integer(load_default=None, validate=validate.Range(min=1))
    tpm = fields.Integer(load_default=None, validate=validate.Range(min=1))
    # Requests in flight at once; none: `limits.max_parallel_per_key`.
    max_parallel = fields.Integer(load_default=None, validate=validate.Range(min=1))
    budget_usd = fields.Float(load_default=None, **_money)
    budget_period = fields.String(load_default="monthly", validate=validate.OneOf(BUDGET_PERIODS))
    metadata = fields.Dict(keys=fields.String(), load_default=dict)
    cache = fields.Boolean(load_default=False)  # the response cache, for every model


class LimitsSchema(StrictSchema):
    max_body_bytes = fields.Integer(load_default=1048576, validate=validate.Range(min=1024))
    # Half of one worker's connections: no key alone can fill a worker, while batch jobs and
    # the benchmark (256 connections) are not refused.
    max_parallel_per_key = fields.Integer(load_default=500, validate=validate.Range(min=1))
    # Messages in one request: validating each costs CPU, so the count is bounded first.
    max_messages = fields.Integer(load_default=2048, validate=validate.Range(min=1))


class RoutingSchema(StrictSchema):
    cooldown_s = fields.Float(load_default=30.0, validate=validate.Range(min=0))
    failures_to_cool = fields.Integer(load_default=3, validate=validate.Range(min=1))
    retry_after_cap_s = fields.Float(load_default=2.0, validate=validate.Range(min=0))


class CacheSchema(StrictSchema):
    """The response cache (see facade/cache): on for the keys and models that ask for it."""

    ttl_s = fields.Float(load_default=3600.0, validate=validate.Range(min=0, min_inclusive=False))
    max_entries = fields.Integer(load_default=10000, validate=validate.Range(min=1))
    # Each worker's memory when there is no Redis: a bound in bytes beside the entry count.
    max_bytes = fields.Integer(load_default=64 * 1024 * 1024, validate=validate.Range(min=1024))
    scope = fields.String(load_default="key", validate=validate.OneOf(CACHE_SCOPES))


class ConfigSchema(StrictSchema):
    providers = fields.List(
        fields.Nested(ProviderSchema), required=True, validate=validate.Length(1)
    )
    models = fields.List(fields.Nested(ModelSchema), required=True, validate=validate.Length(1))
    auto = fields.Nested(AutoSchema, load_default=lambda: AutoSchema().load({}))
    keys = fields.List(fields.Nested(KeySchema), load_default=list)
    limits = fields.Nested(LimitsSchema, load_default=lambda: LimitsSchema().load({}))
    routing = fields.Nested(RoutingSchema, load_default=lambda: RoutingSchema().load({}))
    cache = fields.Nested(CacheSchema, load_default=None, allow_none=True)


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    kind: str
    base_url: str | None
    api_key: str | None
    connect_timeout_s: float
    read_timeout_s: float
    headers: dict
    api_version: str | None
    anthropic_version: str
    ttft_s: float
    tokens_per_s: float
    passthrough_params: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TargetConfig:
    provider: str
    model: str
    weight: float


@dataclass(frozen=True)
class ModelConfig:
    name: str
    targets: tuple[TargetConfig, ...]
    input_cost_per_1m: float
    output_cost_per_1m: float
    context_window: int
    max_output_tokens: int
    capabilities: frozenset[str]
    cached_input_cost_per_1m: float | None = None  # None: the input price
    cache_write_input_cost_per_1m: float | None = None  # None: the input price
    cache: bool = False

    def __post_init__(self) -> None:
        if self.cached_input_cost_per_1m is None:
            object.__setattr__(self, "cached_input_cost_per_1m", self.input_cost_per_1m)
        if self.cache_write_input_cost_per_1m is None:
            object.__setattr__(self, "cache_write_input_cost_per_1m", self.input_cost_per_1m)

    @property
    def dearest_input_cost_per_1m(self) -> float:
        """The most one input token can cost (uncached, read from or written to the cache)."""
        return max(
            self.input_cost_per_1m,
            self.cached_input_cost_per_1m,
            self.cache_write_input_cost_per_1m,
        )

    def cost_usd(
        self, input_tokens: int, output_tokens: int, cached: int = 0, cache_write: int = 0
    ) -> float:
        """What the upstream bills: `input_tokens` is every input token, `cached` of them read
        from the prompt cache and `cache_write` written to it; output includes reasoning."""
        uncached = input_tokens - cached - cache_write
        return (
            uncached * self.input_cost_per_1m
            + cached * self.cached_input_cost_per_1m
            + cache_write * self.cache_write_input_cost_per_1m
            + output_tokens * self.output_cost_per_1m
        ) / 1_000_000


@dataclass(frozen=True)
class KeyConfig:
    name: str
    key: str
    models: tuple[str, ...]
    rpm: int | None
    tpm: int | None
    budget_usd: float | None
    budget_period: str
    metadata: dict
    max_parallel: int | None = None
    cache: bool = False


@dataclass(frozen=True)
class CacheConfig:
    ttl_s: float
    max_entries: int
    max_bytes: int
    scope: str  # "key": entries are the key's own; "global": shared by every key


@dataclass(frozen=True)
class Config:
    providers: dict[str, ProviderConfig]
    models: dict[str, ModelConfig]
    auto_candidates: tuple[str, ...]
    auto_strategy: str
    keys: tuple[KeyConfig, ...]
    max_body_bytes: int
    cooldown_s: float
    failures_to_cool: int
    retry_after_cap_s: float
    source: str
    max_parallel_per_key: int = 500
    max_messages: int = 2048
    cache: CacheConfig | None = None  # None: no response cache at all

    @property
    def is_demo(self) -> bool:
        return self.source == str(DEMO_CONFIG)


def expand_env(node: Any, environ: dict | os._Environ, path: str = "") -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string; an unset VAR names its key."""
    if isinstance(node, dict):
        return {
            k: expand_env(v, environ, f"{path}.{k}" if path else str(k)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [expand_env(v, environ, f"{path}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def sub(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{path}: environment variable {name} is not set")

    return _VAR.sub(sub, node)


def parse_config(raw: Any, source: str = "<memory>", environ: Any = None) -> Config:
    """Validate a parsed YAML document and freeze it; raises ConfigError naming the key."""
    if not isinstance(raw, dict):
        raise ConfigError("the config file must be a YAML mapping with providers and models")
    data = expand_env(raw, os.environ if environ is None else environ)
    try:
        doc = ConfigSchema().load(data)
    except ValidationError as err:
        path, message = flatten_errors(err.messages)[0]
        raise ConfigError(f"{path}: {message}") from None
    return _freeze(doc, source)


def _freeze(doc: dict, source: str) -> Config:
    providers: dict[str, ProviderConfig] = {}
    for i, p in enumerate(doc["providers"]):
        if p["name"] in providers:
            raise ConfigError(f"providers[{i}].name: duplicate provider name {p['name']!r}")
        timeout = p.pop("timeout_s")
        providers[p["name"]] = ProviderConfig(
            **{
                **p,
                "api_version": p["api_version"]
                or (AZURE_DEFAULT_API_VERSION if p["kind"] == "azure" else None),
                "passthrough_params": frozenset(p["passthrough_params"]),
            },
            connect_timeout_s=timeout["connect"],
            read_timeout_s=timeout["read"],
        )
    models: dict[str, ModelConfig] = {}
    for i, m in enumerate(doc["models"]):
        if m["name"] in models or m["name"] == "auto":
            raise ConfigError(f"models[{i}].name: duplicate or reserved model name {m['name']!r}")
        for j, t in enumerate(m["targets"]):
            if t["provider"] not in providers:
                raise ConfigError(
                    f"models[{i}].targets[{j}].provider: unknown provider {t['provider']!r}"
                )
        targets = tuple(TargetConfig(**t) for t in m.pop("targets"))
        caps = frozenset(m.pop("capabilities"))
        models[m["name"]] = ModelConfig(**m, targets=targets, capabilities=caps)
    for i, name in enumerate(doc["auto"]["candidates"]):
        if name not in models:
            raise ConfigError(f"auto.candidates[{i}]: unknown model {name!r}")
    seen: set[str] = set()
    keys = []
    for i, k in enumerate(doc["keys"]):
        if k["key"] in seen:
            raise ConfigError(f"keys[{i}].key: the same key is declared twice")
        seen.add(k["key"])
        for j, name in enumerate(k["models"]):
            if name != "*" and name not in models and name != "auto":
                raise ConfigError(f"keys[{i}].models[{j}]: unknown model {name!r}")
        keys.append(KeyConfig(**{**k, "models": tuple(k["models"])}))
    routing = doc["routing"]
    return Config(
        providers=providers,
        models=models,
        auto_candidates=tuple(doc["auto"]["candidates"]),
        auto_strategy=doc["auto"]["strategy"],
        keys=tuple(keys),
        max_body_bytes=doc["limits"]["max_body_bytes"],
        max_parallel_per_key=doc["limits"]["max_parallel_per_key"],
        max_messages=doc["limits"]["max_messages"],
        cooldown_s=routing["cooldown_s"],
        failures_to_cool=routing["failures_to_cool"],
        retry_after_cap_s=routing["retry_after_cap_s"],
        source=source,
        cache=CacheConfig(**doc["cache"]) if doc["cache"] is not None else None,
    )


def load_config(settings: Settings | None = None, *, announce: bool = False) -> Config:
    """Read the file named by FACADE_CONFIG, or the built-in demo config when it is unset."""
    settings = settings or Settings.from_env()
    path = Path(settings.config_path) if settings.config_path else DEMO_CONFIG
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"FACADE_CONFIG: cannot read {path}: {err.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    config = parse_config(raw, source=str(path))
    # The demo's own keys are short on purpose; a copy of it (`check-config demo.yaml`) is
    # still the demo.
    if not (config.is_demo or text == DEMO_CONFIG.read_text(encoding="utf-8")):
        check_secrets(config, settings)
    if announce and config.is_demo:
        warn_demo()
    return config


# The access log and key views keep a key's first 8 characters: a short key would be there
# whole, and a short one is guessable. Generated keys are far longer.
MIN_KEY_CHARS = 20
MIN_ADMIN_KEY_CHARS = 32


def check_secrets(config: Config, settings: Settings) -> None:
    """Refuse short secrets (outside the demo config): one message naming every one of them,
    never their text."""
    weak = []
    if settings.admin_key is not None and len(settings.admin_key) < MIN_ADMIN_KEY_CHARS:
        weak.append(f"FACADE_ADMIN_KEY (at least {MIN_ADMIN_KEY_CHARS} characters)")
    for i, key in enumerate(config.keys):
        if len(key.key) < MIN_KEY_CHARS:
            weak.append(f"keys[{i}].key of '{key.name}' (at least {MIN_KEY_CHARS} characters)")
    if weak:
        raise ConfigError(
            "secrets too short: " + "; ".join(weak) + ". Generate one with `openssl rand -hex 24`."
        )

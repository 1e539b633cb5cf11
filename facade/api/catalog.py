"""GET /api/v1/models and /api/v1/providers: what this key may use, and upstream health."""

from __future__ import annotations

from marshmallow import Schema, fields

from ..gateway import Gateway
from ..keys import ApiKey
from .blueprint import EnvelopeBlueprint
from .context import authenticate, caller, gateway

blp = EnvelopeBlueprint(
    "catalog", __name__, url_prefix="/api/v1", description="Models and providers."
)
blp.before_request(authenticate)


class AutoSelectorSchema(Schema):
    strategy = fields.String(metadata={"example": "cheapest"})
    candidates = fields.List(
        fields.String(), metadata={"description": "The models it chooses among, for this key."}
    )
    description = fields.String(metadata={"description": "How it chooses, for people."})


class ModelSchema(Schema):
    id = fields.String()
    object = fields.String(metadata={"example": "model"})
    owned_by = fields.String(metadata={"example": "facade"})
    provider = fields.String(metadata={"description": "Kind of the first target's provider."})
    providers = fields.List(fields.String())
    context_window = fields.Integer()
    max_output_tokens = fields.Integer()
    input_cost_per_1m = fields.Float()
    output_cost_per_1m = fields.Float()
    capabilities = fields.List(fields.String())
    auto = fields.Nested(
        AutoSelectorSchema,
        metadata={"description": "Only on the `auto` entry: how Facade picks the model."},
    )


class ModelListSchema(Schema):
    object = fields.String(metadata={"example": "list"})
    data = fields.List(fields.Nested(ModelSchema))


class ProviderSchema(Schema):
    name = fields.String()
    kind = fields.String()
    models = fields.List(fields.String())
    cooling_down = fields.Boolean()
    error_rate = fields.Float(metadata={"description": "Recent share of failed calls, 0..1."})


class ProviderListSchema(Schema):
    data = fields.List(fields.Nested(ProviderSchema))


HOW_AUTO_CHOOSES = {
    "cheapest": "the candidate with the lowest estimated cost for this request (its prompt and "
    "output cap at each model's prices)",
    "fastest": "the candidate with the lowest measured latency (models not measured yet first)",
    "priority": "the first candidate in the listed order",
}


def auto_entry(gw: Gateway, key: ApiKey) -> dict | None:
    """`auto` as a model: listed for keys that may use any model (or name `auto`)."""
    if not ("*" in key.models or "auto" in key.models):
        return None
    config = gw.config
    names = [n for n in (config.auto_candidates or tuple(config.models)) if key.allows(n)]
    if not names:
        return None
    models = [config.models[n] for n in names]
    how = HOW_AUTO_CHOOSES[config.auto_strategy]
    return {
        "id": "auto",
        "object": "model",
        "created": 0,
        "owned_by": "facade",
        "provider": "auto",
        "providers": sorted({t.provider for m in models for t in m.targets}),
        "context_window": max(m.context_window for m in models),
        "max_output_tokens": max(m.max_output_tokens for m in models),
        "capabilities": sorted(set().union(*(m.capabilities for m in models))),
        "auto": {
            "strategy": config.auto_strategy,
            "candidates": names,
            "description": f"Facade picks {how}, among the candidates whose context window "
            "and capabilities (tools, images, json) fit the request; if it fails, the next "
            'one is tried. Send no model, or model "auto".',
        },
    }


def model_list(gw: Gateway, key: ApiKey, with_auto: bool = False) -> dict:
    """The models this key may use, in OpenAI's list shape plus Facade's details; `auto`
    too on Facade's own route (the plain /v1 list keeps to the configured models)."""
    rows = []
    for model in gw.config.models.values():
        if not key.allows(model.name):
            continue
        kinds = [gw.config.providers[t.provider].kind for t in model.targets]
        rows.append(
            {
                "id": model.name,
                "object": "model",
                "created": 0,
                "owned_by": "facade",
                "provider": kinds[0],
                "providers": sorted({t.provider for t in model.targets}),
                "context_window": model.context_window,
                "max_output_tokens": model.max_output_tokens,
                "input_cost_per_1m": model.input_cost_per_1m,
                "output_cost_per_1m": model.output_cost_per_1m,
                "capabilities": sorted(model.capabilities),
            }
        )
    auto = auto_entry(gw, key) if with_auto else None
    if auto is not None:
        rows.append(auto)
    return {"object": "list", "data": rows}


@blp.route("/models", methods=["GET"])
@blp.response(200, ModelListSchema)
def list_models() -> dict:
    """List the models the calling key may use."""
    return model_list(gateway(), caller(), with_auto=True)


@blp.route("/providers", methods=["GET"])
@blp.response(200, ProviderListSchema)
def list_providers() -> dict:
    """List configured providers with their kind, models and health."""
    gw = gateway()
    rows = []
    for name, provider in gw.config.providers.items():
        models = sorted(
            {m.name for m in gw.config.models.values() for t in m.targets if t.provider == name}
        )
        rows.append(
            {
                "name": name,
                "kind": provider.kind,
                "models": models,
                **gw.router.provider_health(name),
            }
        )
    return {"data": rows}

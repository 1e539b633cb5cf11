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


def model_list(gw: Gateway, key: ApiKey) -> dict:
    """The models this key may use, in OpenAI's list shape plus Facade's details."""
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
    return {"object": "list", "data": rows}


@blp.route("/models", methods=["GET"])
@blp.response(200, ModelListSchema)
def list_models() -> dict:
    """List the models the calling key may use."""
    return model_list(gateway(), caller())


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

"""The LLMstudio engine API, plain: POST /api/engine/chat/{provider}, GET /api/engine/providers
and /api/engine/models, so LLMstudio clients move to Facade by changing the URL and the key.

The chat runs the same pipeline as every chat (keys, limits, budgets, routing, fallback, usage
rows, metrics). `{provider}` must be a configured provider and `model` a configured model with
a target on it (404 otherwise); the model's own targets and fallbacks then apply, and
`metrics.provider` says which answered. The key comes as `Authorization: Bearer` or as the
body's `api_key`. `session_id` is echoed and kept on the request's usage row.
"""

from __future__ import annotations

from flask import Response, g, request
from marshmallow import ValidationError

from .. import jsonutil
from ..errors import FacadeError, InvalidRequestError, ModelNotFoundError, NotFoundError
from ..gateway import Gateway
from ..keys import ApiKey
from ..protocols.llmstudio import NOT_PARAMETERS, StreamLines, to_answer, to_chat
from ..schemas.chat_request import ChatRequestSchema
from ..schemas.llmstudio_request import LLMstudioChatSchema
from ..validation import flatten_errors
from .blueprint import read_body_once
from .chat import run_chat
from .context import caller, gateway, request_id
from .errors import llmstudio_error_body
from .openai_compat import PlainBlueprint

blp = PlainBlueprint(
    "llmstudio",
    __name__,
    url_prefix="/api/engine",
    description="The LLMstudio engine API, for LLMstudio clients: plain bodies; "
    "Bearer keys or the body's api_key.",
)
CHAT_SCHEMA = ChatRequestSchema()  # strict: a parameter that is no chat parameter is a 400


def authenticate_llmstudio() -> None:
    """A before_request hook: Bearer as anywhere, else the JSON body's `api_key`."""
    authorization = request.headers.get("Authorization")
    if authorization is None and request.method == "POST":
        try:
            body = jsonutil.loads(read_body_once(request))
        except jsonutil.JSONDecodeError:
            body = None
        key = body.get("api_key") if isinstance(body, dict) else None
        if isinstance(key, str) and key:
            authorization = f"Bearer {key}"
    caller(authorization)


blp.before_request(authenticate_llmstudio)


class NDJSONStream:
    """Presents a stream as LLMstudio's lines (see facade.api.relay.Presenter)."""

    content_type = "application/x-ndjson"
    keepalive = b"\n"  # a blank line while the first chunk is awaited
    done = b""

    def __init__(self, lines: StreamLines):
        self.lines = lines

    def chunk(self, chunk: dict) -> bytes:
        line = self.lines.line(chunk)
        return b"" if line is None else jsonutil.dumps(line) + b"\n"

    @staticmethod
    def error(err: FacadeError, request_id: str) -> bytes:
        return jsonutil.dumps(llmstudio_error_body(err, request_id)) + b"\n"


def check_target(gw: Gateway, provider: str, model: str) -> None:
    if provider not in gw.config.providers:
        raise NotFoundError(f"no provider named {provider!r}", param="provider")
    config = gw.config.models.get(model)
    if config is None:
        raise ModelNotFoundError(f"no model named {model!r}", param="model")
    if not any(t.provider == provider for t in config.targets):
        raise ModelNotFoundError(
            f"model {model!r} has no target on provider {provider!r}", param="model"
        )


def chat_body(body: dict) -> dict:
    """The engine request as a validated chat body; errors name the engine's fields."""
    for name in body.get("parameters") or {}:
        if name in NOT_PARAMETERS:
            raise InvalidRequestError(
                f"parameters.{name}: not a parameter here; use {NOT_PARAMETERS[name]}",
                param=f"parameters.{name}",
            )
    try:
        return CHAT_SCHEMA.load(to_chat(body))
    except ValidationError as err:
        param, message = flatten_errors(err.messages)[0]
        if param.startswith("messages"):
            param = "chat_input" + param.removeprefix("messages")
        else:
            param = f"parameters.{param}"
        raise InvalidRequestError(f"{param}: {message}", param=param) from None


@blp.route("/chat/<provider>", methods=["POST"])
@blp.arguments(LLMstudioChatSchema(), error_status_code=400)
@blp.doc(
    responses={
        "200": {
            "description": "LLMstudio's answer: the chat.completion's fields plus chat_input, "
            "chat_output, context, provider, session_id, timestamp, parameters and metrics; "
            "with is_stream, application/x-ndjson lines (chat_output_stream each, the last "
            "with chat_output, usage and metrics)."
        }
    }
)
def engine_chat(body: dict, provider: str) -> Response:
    """Chat with a model on a provider (LLMstudio's engine API)."""
    check_target(gateway(), provider, body["model"])
    chat = chat_body(body)
    g.outcome.session_id = body.get("session_id")
    rid = request_id()
    if chat.get("stream"):
        return run_chat(chat, NDJSONStream(StreamLines(body, provider, rid)))
    data = run_chat(chat, None)
    answer = to_answer(data, body, provider, rid)
    return Response(jsonutil.dumps(answer), mimetype="application/json")


def usable(gw: Gateway, key: ApiKey) -> dict[str, list[str]]:
    """Provider name -> the models this key may use with a target on it, in config order."""
    out: dict[str, list[str]] = {name: [] for name in gw.config.providers}
    for model in gw.config.models.values():
        if not key.allows(model.name):
            continue
        for target in model.targets:
            if model.name not in out[target.provider]:
                out[target.provider].append(model.name)
    return {name: models for name, models in out.items() if models}


@blp.route("/providers", methods=["GET"])
def engine_providers() -> Response:
    """List the providers this key may use (names)."""
    return Response(jsonutil.dumps(list(usable(gateway(), caller()))), mimetype="application/json")


@blp.route("/models", methods=["GET"])
def engine_models() -> Response:
    """List the models this key may use, by provider: {provider: {name, models}}."""
    listing = {
        name: {"name": name, "models": models}
        for name, models in usable(gateway(), caller()).items()
    }
    return Response(jsonutil.dumps(listing), mimetype="application/json")

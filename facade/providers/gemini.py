"""Google Gemini API (generativelanguage v1beta): pure translation to and from OpenAI chat.

Decisions, and why:
- The key goes only in the `x-goog-api-key` header, never as `?key=`: URLs end up in logs.
- Tool parameters go out as `parametersJsonSchema`, a json_schema response format as
  `responseJsonSchema`: both take the plain JSON Schema OpenAI callers write, where the
  older `parameters` / `responseSchema` take an OpenAPI subset that rejects common keywords
  such as `additionalProperties`.
- Gemini pairs tool results with calls by function name: the name is found from the id of
  the earlier assistant tool call (no match is the caller's error). A JSON-object result is
  the `response`; anything else goes as `{"content": text}`. Tool results are not merged
  with the caller's text into one turn: Gemini counts function responses per turn.
- Refused (UnsupportedParameterError): `logit_bias` (no such control), `parallel_tool_calls:
  false` (no way to ask for one call at a time), images and files not sent as data: URLs
  (this API does not fetch arbitrary URLs), non-text system or tool content, token-array
  embedding inputs.
- Translated: `reasoning_effort` -> `thinkingConfig.thinkingBudget` (none 0, minimal 1024,
  low 2048, medium 8192, high 24576, xhigh 32768); legacy `functions` -> tools.
- Also refused: `verbosity` other than medium, audio `modalities` and `audio`, `prediction`,
  `web_search_options`, `service_tier` flex / scale / priority.
- Not sent, as hints with no Gemini counterpart and no effect on the output: `user`,
  `safety_identifier`, `metadata`, `store`, `prompt_cache_key`, `service_tier` auto /
  default, a message's `name`, an image's `detail`, a tool's `strict`. Zero penalties and
  `n` = 1 are defaults and not sent either: some models refuse the penalty fields even at 0.
- No terminal stream event exists: a stream is complete once every candidate seen has a
  finishReason (or the prompt was blocked); EOF before that is a cut-off.
- Usage: `promptTokenCount` already includes `cachedContentTokenCount` (the cached part,
  given as `prompt_tokens_details.cached_tokens`); `thoughtsTokenCount` is billed as output
  but not part of `candidatesTokenCount`, so it is added to `completion_tokens` and given as
  `completion_tokens_details.reasoning_tokens`.
- Embedding usage is not reported by Gemini: it is estimated at four characters a token.
- Known limit: Gemini 3 "thought signatures" are not carried through tool-call ids, so
  models that require them refuse multi-turn tool use.
"""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Iterable, Iterator
from urllib.parse import quote

from .. import jsonutil
from ..config import ProviderConfig
from ..errors import UnsupportedParameterError, UpstreamError
from .base import ChatCall, EmbeddingCall
from .common import event_json, token_counts
from .gemini_request import build_payload as build_payload  # the request half, re-exported
from .sse import SSEEvent

KIND = "gemini"
_FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}


def auth_headers(config: ProviderConfig) -> dict[str, str]:
    return {"x-goog-api-key": config.api_key} if config.api_key else {}


def _model_path(upstream_model: str) -> str:
    """`gemini-2.5-flash` -> `models/gemini-2.5-flash`; `tunedModels/x` stays as it is."""
    return upstream_model if "/" in upstream_model else f"models/{upstream_model}"


def _url(config: ProviderConfig, upstream_model: str, method: str) -> str:
    path = quote(_model_path(upstream_model), safe="/+=-._~@")
    return f"{config.base_url.rstrip('/')}/{path}:{method}"


def chat_url(config: ProviderConfig, upstream_model: str, stream: bool) -> str:
    if stream:
        return _url(config, upstream_model, "streamGenerateContent") + "?alt=sse"
    return _url(config, upstream_model, "generateContent")


def embedding_url(config: ProviderConfig, upstream_model: str) -> str:
    return _url(config, upstream_model, "batchEmbedContents")


# -- request ------------------------------------------------------------------------------


def parse_response(data: dict, call: ChatCall) -> dict:
    answer = _base(data, call, "chat.completion")
    answer["choices"] = []
    for n, candidate in enumerate(_candidates(data)):
        index, text, calls, finish, logprobs = _read(candidate, n, 0)
        message: dict = {"role": "assistant", "content": text if text or not calls else None}
        if calls:
            message["tool_calls"] = calls
        choice = {"index": index, "message": message, "finish_reason": finish or "stop"}
        answer["choices"].append({**choice, "logprobs": logprobs} if logprobs else choice)
    if not answer["choices"]:
        raise UpstreamError("the gemini answer has no candidates")
    usage = _usage(data.get("usageMetadata"))
    return {**answer, "usage": usage} if usage else answer


def _base(data: dict, call: ChatCall, kind: str) -> dict:
    return {
        "id": data.get("responseId") or f"chatcmpl-{call.request_id}",
        "object": kind,
        "created": int(time.time()),
        "model": data.get("modelVersion") or call.upstream_model,
    }


def _candidates(data: dict) -> list:
    """The candidates; a prompt Gemini blocked reads as one candidate stopped for safety."""
    candidates = data.get("candidates") or []
    if not candidates and _dict(data.get("promptFeedback")).get("blockReason"):
        return [{"finishReason": "SAFETY"}]
    if not isinstance(candidates, list) or not all(isinstance(c, dict) for c in candidates):
        raise UpstreamError("the gemini answer has malformed candidates")
    return candidates


def _read(candidate: dict, n: int, first_call: int) -> tuple:
    """(index, visible text, tool calls, finish reason or None, logprobs or None)."""
    texts, calls = [], []
    parts = _dict(candidate.get("content")).get("parts")
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            raise UpstreamError("the gemini answer has a malformed part")
        if isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            fc = part["functionCall"]
            arguments = jsonutil.dumps(fc.get("args") or {}).decode()
            function = {"name": fc.get("name"), "arguments": arguments}
            call_id = fc.get("id") or f"call_{first_call + len(calls)}"
            calls.append({"id": call_id, "type": "function", "function": function})
    logprobs = _dict(candidate.get("logprobsResult"))
    return (
        candidate.get("index", n),
        "".join(texts),
        calls,
        _finish(candidate.get("finishReason"), bool(calls) or first_call > 0),
        _logprobs(logprobs) if logprobs else None,
    )


def _dict(value) -> dict:
    """A vendor field that should be an object; anything else reads as empty."""
    return value if isinstance(value, dict) else {}


def _finish(reason: str | None, called: bool) -> str | None:
    if not reason:
        return None
    if reason in _FILTERED:
        return "content_filter"
    finish = _FINISH.get(reason, "stop")
    return "tool_calls" if called and finish == "stop" else finish


_USAGE_KEYS = (
    "promptTokenCount",
    "toolUsePromptTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "cachedContentTokenCount",
)


def _usage(meta: object) -> dict | None:
    """Gemini's counts in OpenAI's shape: thoughts are output, tool-use prompts input, the
    cached count part of the prompt. None when the counts are odd."""
    counts = token_counts(meta, _USAGE_KEYS)
    if counts is None:
        return None
    prompt, tool_prompt, candidates, thoughts, cached = counts
    prompt += tool_prompt
    completion = candidates + thoughts
    usage: dict = {"prompt_tokens": prompt, "completion_tokens": completion}
    usage["total_tokens"] = prompt + completion
    if thoughts:
        usage["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return usage


def _logprobs(result: dict) -> dict:
    """Gemini's chosen and top candidates -> OpenAI's `logprobs.content` list."""

    def entry(c: dict) -> dict:
        token = c.get("token", "")
        return {"token": token, "logprob": c.get("logProbability", 0.0), "bytes": [*token.encode()]}

    tops = result.get("topCandidates") or []
    content = []
    for n, chosen in enumerate(result.get("chosenCandidates") or ()):
        top = tops[n].get("candidates", []) if n < len(tops) else []
        content.append({**entry(chosen), "top_logprobs": [entry(c) for c in top]})
    return {"content": content, "refusal": None}


def translate_stream(events: Iterable[SSEEvent], call: ChatCall) -> Iterator[dict]:
    """Every event is a whole GenerateContentResponse holding the next piece."""
    base: dict | None = None
    usage = None
    started: set[int] = set()
    finished: set[int] = set()
    calls: dict[int, int] = {}  # candidate index -> tool calls given so far
    for event in events:
        data = event_json(event)
        if "error" in data:
            raise UpstreamError(_message_of(data) or "the upstream reported an error mid-stream")
        base = base or _base(data, call, "chat.completion.chunk")
        usage = _usage(data.get("usageMetadata")) or usage
        for n, candidate in enumerate(_candidates(data)):
            index = candidate.get("index", n)
            first = calls.get(index, 0)
            index, text, tool_calls, finish, logprobs = _read(candidate, n, first)
            delta: dict = {} if index in started else {"role": "assistant", "content": ""}
            started.add(index)
            if text:
                delta["content"] = text
            if tool_calls:
                calls[index] = first + len(tool_calls)
                delta["tool_calls"] = [{**c, "index": first + k} for k, c in enumerate(tool_calls)]
            if delta or logprobs:
                choice = {"index": index, "delta": delta, "finish_reason": None}
                extra = {"logprobs": logprobs} if logprobs else {}
                yield {**base, "choices": [{**choice, **extra}]}
            if finish:
                finished.add(index)
                choice = {"index": index, "delta": {}, "finish_reason": finish}
                yield {**base, "choices": [choice]}
    if base is None or not finished or started - finished:
        raise UpstreamError("the upstream stream ended before it was complete")
    if usage is not None:
        yield {**base, "choices": [], "usage": usage}


def error_message(status: int, body: bytes) -> str | None:
    """`{"error": {"code", "message", "status"}}`, also as a one-element list."""
    try:
        data = jsonutil.loads(body)
    except jsonutil.JSONDecodeError:
        return None
    return _message_of(data[0] if isinstance(data, list) and data else data)


def _message_of(data) -> str | None:
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"][:1000]
    return None


# -- embeddings ---------------------------------------------------------------------------


def _inputs(body: dict) -> list[str]:
    inputs = body["input"]
    inputs = [inputs] if isinstance(inputs, str) else list(inputs)
    if not all(isinstance(text, str) for text in inputs):
        raise UnsupportedParameterError("input", KIND, "token arrays; send text")
    return inputs


def build_embedding_payload(call: EmbeddingCall) -> dict:
    body = call.body
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise UnsupportedParameterError("encoding_format", KIND, "use float or base64")
    model = _model_path(call.upstream_model)
    requests = []
    for text in _inputs(body):
        request: dict = {"model": model, "content": {"parts": [{"text": text}]}}
        if body.get("dimensions") is not None:
            request["outputDimensionality"] = body["dimensions"]
        requests.append(request)
    return {"requests": requests}


def parse_embedding_response(data: dict, call: EmbeddingCall) -> dict:
    inputs = _inputs(call.body)
    embeddings = data.get("embeddings")
    if not isinstance(embeddings, list) or len(embeddings) != len(inputs):
        raise UpstreamError("the gemini embeddings answer does not match the inputs")
    as_base64 = call.body.get("encoding_format") == "base64"
    rows = []
    for i, item in enumerate(embeddings):
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(values, list):
            raise UpstreamError("the gemini embeddings answer has no values")
        if as_base64:  # what OpenAI sends: little-endian float32, base64-encoded
            values = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
        rows.append({"object": "embedding", "index": i, "embedding": values})
    tokens = sum((len(text) + 3) // 4 for text in inputs)
    return {
        "object": "list",
        "data": rows,
        "model": call.upstream_model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }

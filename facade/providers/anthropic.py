"""Anthropic Messages API: pure translation between OpenAI chat and Claude's wire format.

Decisions, and why:
- Claude has one system prompt: system and developer messages are lifted into `system`, in
  order. Consecutive messages of one role are merged, and a run of `tool` messages becomes
  one user turn of `tool_result` blocks (first in the turn, as Claude requires).
- `max_tokens` is mandatory for Claude: the caller's cap, else the model's configured
  `max_output_tokens` (what budgets reserve too).
- Legacy `function_call` / `function` messages become tool_use / tool_result pairs with
  synthetic ids: Claude pairs results with calls by id, not by name.
- Refused (UnsupportedParameterError), since dropping them would silently change the answer:
  `temperature` > 1 (Claude's range is 0..1, rescaling would change its meaning), `n` > 1,
  `logprobs` (so `top_logprobs` too), a non-empty `logit_bias`, non-zero frequency or
  presence penalties, `seed`, `response_format` json_object / json_schema (Claude's
  structured output is a beta behind a header; prompting for JSON is no guarantee), audio
  parts, files other than PDF data: URLs, and image URLs neither data: nor http(s).
- Translated: `reasoning_effort` -> extended thinking with a budget (minimal 1024, low 2048,
  medium 8192, high 24576, xhigh 32768 tokens, lowered to leave 1024 of `max_tokens` for the
  answer; below 2048 `max_tokens` it is refused); `safety_identifier`, else `user`, else
  `metadata.user_id` -> `metadata.user_id`; `service_tier` auto -> auto, default ->
  standard_only; legacy `functions` / `function_call` -> tools / tool_choice.
- Also refused: `verbosity` other than medium, audio `modalities` and `audio`, `prediction`,
  `web_search_options`, `service_tier` flex / scale / priority.
- Dropped, since they cannot change the answer: `store` (OpenAI's own stored completions),
  `prompt_cache_key` (a routing hint for OpenAI's cache), `metadata` keys other than user_id.
- Taken as hints and not sent: a message's `name`, an image's `detail`, a tool's `strict`.
  Claude has no counterpart, and refusing them would break common SDK defaults (the OpenAI
  Agents SDK marks every tool strict) for no change in the output.
- Usage: Claude's `input_tokens` leaves out the prompt-cache reads and writes, so
  `prompt_tokens` is the sum of the three (every input token, as OpenAI counts), with the
  reads as `prompt_tokens_details.cached_tokens` and the writes as
  `prompt_tokens_details.cache_write_tokens`, so each is priced at its own rate.
- Known limit: thinking blocks are not carried back through chat history, so Claude refuses a
  tool-use conversation that continues with `reasoning_effort` on (it wants its thinking
  blocks back beside each tool_use); its 400 is passed on.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from .. import jsonutil
from ..config import ProviderConfig
from ..errors import UpstreamError
from .anthropic_request import build_payload as build_payload  # the request half, re-exported
from .anthropic_request import count_tokens_payload as count_tokens_payload
from .base import ChatCall
from .common import event_json, token_counts
from .sse import SSEEvent

KIND = "anthropic"
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_CACHE_KEYS = ("cache_creation_input_tokens", "cache_read_input_tokens")
_USAGE_KEYS = ("input_tokens", "output_tokens", *_CACHE_KEYS)


def auth_headers(config: ProviderConfig) -> dict[str, str]:
    headers = {"anthropic-version": config.anthropic_version}
    if config.api_key:
        headers["x-api-key"] = config.api_key
    return headers


def chat_url(config: ProviderConfig, upstream_model: str, stream: bool) -> str:
    base = config.base_url.rstrip("/")
    if base.endswith("/v1"):
        base = base[:-3]
    return f"{base}/v1/messages"


def count_tokens_url(config: ProviderConfig) -> str:
    return chat_url(config, "", False) + "/count_tokens"


def parse_count(data: dict) -> int:
    count = data.get("input_tokens")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise UpstreamError("the anthropic token count has no input_tokens")
    return count


def parse_response(data: dict, call: ChatCall) -> dict:
    content = data.get("content")
    if not isinstance(content, list):
        raise UpstreamError("the anthropic answer has no content")
    texts: list[str] = []
    tool_calls: list[dict] = []
    for block in content:
        if not isinstance(block, dict):
            raise UpstreamError("the anthropic answer has a malformed content block")
        if block.get("type") == "text":
            texts.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            arguments = jsonutil.dumps(block.get("input") or {}).decode()
            function = {"name": block.get("name"), "arguments": arguments}
            tool_calls.append({"id": block.get("id"), "type": "function", "function": function})
        # thinking and redacted_thinking blocks have no place in a chat.completion
    text = "".join(texts)
    message: dict = {"role": "assistant", "content": text if text or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    answer = {
        "id": data.get("id") or f"chatcmpl-{call.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("model") or call.upstream_model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": _finish(data.get("stop_reason"))}
        ],
    }
    usage = _usage(data.get("usage"))
    if usage is not None:
        answer["usage"] = usage
    if call.native is not None:
        answer["native"] = data  # a Messages client gets Claude's own answer
    return answer


def _finish(stop_reason: str | None) -> str:
    return FINISH_REASONS.get(stop_reason or "", "stop")


def _usage(usage: object) -> dict | None:
    """Claude's counts in OpenAI's shape: cache reads and writes are not part of Claude's
    `input_tokens`, but are of `prompt_tokens`. None when the counts are odd."""
    counts = token_counts(usage, _USAGE_KEYS)
    if counts is None:
        return None
    fresh, completion, written, cached = counts
    prompt = fresh + written + cached
    out: dict = {"prompt_tokens": prompt, "completion_tokens": completion}
    out["total_tokens"] = prompt + completion
    details = {}
    if cached:
        details["cached_tokens"] = cached
    if written:
        details["cache_write_tokens"] = written
    if details:
        out["prompt_tokens_details"] = details
    return out


class _StreamState:
    """What a Claude stream has said so far: the chunk base, usage, tool blocks, the end."""

    __slots__ = ("base", "finished", "stopped", "tools", "usage")

    def __init__(self, call: ChatCall):
        self.base = {
            "id": f"chatcmpl-{call.request_id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": call.upstream_model,
        }
        self.usage: dict = {}
        self.tools: dict[int, int] = {}  # Claude content block index -> OpenAI tool call index
        self.finished = False  # a stop_reason was seen
        self.stopped = False  # message_stop was seen: the only proper end

    def chunk(self, delta: dict, finish: str | None = None) -> dict:
        return {**self.base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def step(self, data: dict, kind: str | None) -> list[dict]:
        """The OpenAI chunks one Claude event makes (often none)."""
        if kind == "message_start":
            message = _dict(data.get("message"))
            self.base["id"] = message.get("id") or self.base["id"]
            self.base["model"] = message.get("model") or self.base["model"]
            _merge_usage(self.usage, message.get("usage"))
            return [self.chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = _dict(data.get("content_block"))
            if block.get("type") == "tool_use":
                index = self.tools[data.get("index")] = len(self.tools)
                function = {"name": block.get("name"), "arguments": ""}
                call_delta = {"index": index, "id": block.get("id"), "type": "function"}
                return [self.chunk({"tool_calls": [{**call_delta, "function": function}]})]
            if block.get("type") == "text" and block.get("text"):
                return [self.chunk({"content": block["text"]})]
        elif kind == "content_block_delta":
            delta = _dict(data.get("delta"))
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [self.chunk({"content": delta["text"]})]
            if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                index = self.tools.get(data.get("index"))
                if index is None:
                    raise UpstreamError("the upstream sent tool input for no tool call")
                arguments = {"arguments": delta["partial_json"]}
                return [self.chunk({"tool_calls": [{"index": index, "function": arguments}]})]
        elif kind == "message_delta":
            _merge_usage(self.usage, data.get("usage"))
            stop_reason = _dict(data.get("delta")).get("stop_reason")
            if stop_reason:
                self.finished = True
                return [self.chunk({}, _finish(stop_reason))]
        elif kind == "message_stop":
            self.stopped = True
            end = [] if self.finished else [self.chunk({}, "stop")]
            usage = _usage(self.usage)
            if usage is not None:
                end.append({**self.base, "choices": [], "usage": usage})
            return end
        elif kind == "error":
            raise UpstreamError(_message_of(data) or "the upstream reported an error mid-stream")
        # ping, content_block_stop and event types added later carry nothing for us
        return []


def translate_stream(events: Iterable[SSEEvent], call: ChatCall) -> Iterator[dict]:
    """Claude's typed events -> OpenAI chunks; `message_stop` is the only proper end.

    For a native call (`call.native`, a Messages client) every event also rides along on a
    chunk as it came (`native`), an empty-choices chunk when it makes no OpenAI chunk, so
    the client gets Claude's own stream while the gateway still meters the OpenAI one.
    """
    state = _StreamState(call)
    native = call.native is not None
    for event in events:
        data = event_json(event)
        chunks = state.step(data, data.get("type") or event.event)
        if native:
            if not chunks:
                chunks = [{**state.base, "choices": []}]
            chunks[-1]["native"] = data
        yield from chunks
        if state.stopped:
            return
    raise UpstreamError("the upstream stream ended before it was complete")


def _dict(value) -> dict:
    """A vendor field that should be an object; anything else reads as empty."""
    return value if isinstance(value, dict) else {}


def _merge_usage(usage: dict, update) -> None:
    """Claude's counts are cumulative: the latest value of each counter wins."""
    if isinstance(update, dict):
        for key in _USAGE_KEYS:
            if update.get(key) is not None:
                usage[key] = update[key]


def error_message(status: int, body: bytes) -> str | None:
    """`{"type": "error", "error": {"type", "message"}}` -> the message."""
    try:
        return _message_of(jsonutil.loads(body))
    except jsonutil.JSONDecodeError:
        return None


def _message_of(data) -> str | None:
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"][:1000]
    return None

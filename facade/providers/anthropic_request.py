"""OpenAI chat request -> Anthropic Messages request (the request half of anthropic.py).

The decisions (what is lifted, merged, refused) are listed in anthropic.py's docstring.
"""

from __future__ import annotations

from ..errors import InvalidRequestError, UnsupportedParameterError
from .base import ChatCall
from .common import (
    THINKING_BUDGETS,
    chat_tools,
    refuse_openai_only,
    split_data_url,
    tool_arguments,
)

KIND = "anthropic"
# (parameter, does this value ask for what Claude cannot do?, why); top_logprobs needs logprobs.
_REFUSED = (
    ("temperature", lambda v: v > 1, "Claude accepts 0 to 1"),
    ("n", lambda v: v > 1, "Claude returns one choice per request"),
    ("logprobs", bool, "Claude does not return log probabilities"),
    ("logit_bias", bool, "Claude has no token biasing"),
    ("frequency_penalty", bool, "Claude has no repetition penalties"),
    ("presence_penalty", bool, "Claude has no repetition penalties"),
    ("seed", lambda v: True, "Claude has no seeded sampling"),
)
_MIN_THINKING = 1024  # Claude's smallest thinking budget
_TIERS = {"auto": "auto", "default": "standard_only"}


def build_payload(call: ChatCall) -> dict:
    if call.native is not None:
        return native_payload(call)
    body = call.body
    _refuse_unsupported(body)
    system, messages = _messages(body["messages"])
    payload: dict = {
        "model": call.upstream_model,
        "max_tokens": call.max_tokens or call.model.max_output_tokens,
        "messages": messages,
    }
    if system:
        payload["system"] = system
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            payload[name] = body[name]
    stop = body.get("stop")
    if stop:
        payload["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    functions, choice = chat_tools(body)
    if functions:
        payload["tools"] = [_tool(f) for f in functions]
        choice = _tool_choice(choice, body.get("parallel_tool_calls"))
        if choice:
            payload["tool_choice"] = choice
    thinking = _thinking(body.get("reasoning_effort"), payload["max_tokens"])
    if thinking:
        payload["thinking"] = thinking
    user_id = _user_id(body)
    if user_id:
        payload["metadata"] = {"user_id": user_id}
    if body.get("service_tier"):
        payload["service_tier"] = _TIERS[body["service_tier"]]
    if call.stream:
        payload["stream"] = True
    return payload


def _thinking(effort: str | None, max_tokens: int) -> dict | None:
    """`reasoning_effort` -> an extended thinking budget that leaves 1024 tokens to answer."""
    if not effort or effort == "none":
        return None
    budget = min(THINKING_BUDGETS[effort], max_tokens - _MIN_THINKING)
    if budget < _MIN_THINKING:
        raise UnsupportedParameterError(
            "reasoning_effort",
            KIND,
            f"Claude's extended thinking needs max_tokens of at least {2 * _MIN_THINKING}",
        )
    return {"type": "enabled", "budget_tokens": budget}


def _user_id(body: dict) -> str | None:
    """Claude's one end-user id: `safety_identifier`, else `user`, else metadata's user_id."""
    metadata = body.get("metadata") or {}
    return body.get("safety_identifier") or body.get("user") or metadata.get("user_id")


def native_payload(call: ChatCall) -> dict:
    """A Messages request passed as the client sent it (validated, so no unknown field), with
    the target's model id; nothing is translated, so nothing is lost.

    One exception: a `thinking` block with an empty signature was made by Facade from another
    vendor's reasoning (an earlier turn answered by a fallback target); Claude refuses any
    block it did not sign, so those are left out.
    """
    payload = {**call.native, "model": call.upstream_model}
    payload.pop("stream", None)
    if call.stream:
        payload["stream"] = True
    if any(_unsigned(m) for m in payload["messages"]):
        payload["messages"] = [_without_unsigned(m) for m in payload["messages"]]
    return payload


def _unsigned(message: dict) -> bool:
    content = message["content"]
    return (
        message["role"] == "assistant"
        and isinstance(content, list)
        and any(b["type"] == "thinking" and not b["signature"] for b in content)
    )


def _without_unsigned(message: dict) -> dict:
    if not _unsigned(message):
        return message
    kept = [b for b in message["content"] if b["type"] != "thinking" or b["signature"]]
    return {**message, "content": kept}


def count_tokens_payload(call: ChatCall) -> dict:
    """A count_tokens request: the Messages fields that count, with the target's model id."""
    fields = ("messages", "system", "tools", "tool_choice", "thinking")
    payload = {name: call.native[name] for name in fields if name in call.native}
    payload["model"] = call.upstream_model
    return payload


def _refuse_unsupported(body: dict) -> None:
    refuse_openai_only(body, KIND)
    for name, cannot, why in _REFUSED:
        value = body.get(name)
        if value is not None and cannot(value):
            raise UnsupportedParameterError(name, KIND, why)
    fmt = (body.get("response_format") or {}).get("type", "text")
    if fmt != "text":
        raise UnsupportedParameterError(
            "response_format", KIND, f"{fmt} output is not guaranteed by Claude"
        )


def _tool(function: dict) -> dict:
    tool = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        tool["description"] = function["description"]
    return tool


def _tool_choice(choice, parallel: bool | None) -> dict | None:
    if choice is None:
        out = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    else:
        out = {"type": "tool", "name": choice["function"]["name"]}
    if out is not None and parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def _messages(messages: list[dict]) -> tuple[str, list[dict]]:
    system: list[str] = []
    out: list[dict] = []
    legacy: dict[str, list[str]] = {}  # function name -> ids of its unanswered calls
    for i, message in enumerate(messages):
        role = message["role"]
        content = message.get("content")
        if role in ("system", "developer"):
            text = _plain_text(content, i)
            if text:
                system.append(text)
        elif role == "user":
            _append(out, "user", _blocks(content, i))
        elif role == "assistant":
            _append(out, "assistant", _assistant_blocks(message, i, legacy))
        elif role == "tool":
            result = _tool_result(message["tool_call_id"], content, i)
            _append(out, "user", [result])
        else:  # legacy "function" result: answers the oldest open call of that name
            pending = legacy.get(message.get("name") or "")
            if not pending:
                raise InvalidRequestError(
                    "a function message must answer an earlier assistant function_call "
                    "of the same name",
                    param=f"messages[{i}].name",
                )
            _append(out, "user", [_tool_result(pending.pop(0), content, i)])
    return "\n\n".join(system), out


def _append(out: list[dict], role: str, blocks: list[dict]) -> None:
    if not blocks:
        return
    if out and out[-1]["role"] == role:
        merged = out[-1]["content"] + blocks
        if role == "user":  # Claude wants tool results before anything else in the turn
            merged = [b for b in merged if b["type"] == "tool_result"] + [
                b for b in merged if b["type"] != "tool_result"
            ]
        out[-1]["content"] = merged
    else:
        out.append({"role": role, "content": list(blocks)})


def _plain_text(content, i: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if part["type"] not in ("text", "refusal"):
            raise UnsupportedParameterError(
                f"messages[{i}].content", KIND, f"{part['type']} parts in this role"
            )
        texts.append(part.get("text") or part.get("refusal") or "")
    return "\n".join(t for t in texts if t)


def _blocks(content, i: int) -> list[dict]:
    """A user or tool message's content as Claude blocks; empty text is left out."""
    if content is None or isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content:
        kind = part["type"]
        if kind in ("text", "refusal"):
            text = part.get("text") or part.get("refusal")
            if text:
                blocks.append({"type": "text", "text": text})
        elif kind == "image_url":
            blocks.append(_image(part["image_url"]["url"], i))
        elif kind == "file":
            blocks.append(_document(part.get("file") or {}, i))
        else:
            raise UnsupportedParameterError(
                f"messages[{i}].content", KIND, f"{kind} parts are not accepted by Claude"
            )
    return blocks


def _image(url: str, i: int) -> dict:
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    parsed = split_data_url(url)
    if parsed is None:
        raise UnsupportedParameterError(
            f"messages[{i}].content", KIND, "images must be base64 data: URLs or http(s) URLs"
        )
    media_type, data = parsed
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _document(file: dict, i: int) -> dict:
    parsed = split_data_url(file.get("file_data") or "")
    if parsed is None or parsed[0] != "application/pdf":
        raise UnsupportedParameterError(
            f"messages[{i}].content", KIND, "only PDF files sent as base64 data: URLs"
        )
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": parsed[1]},
    }


def _assistant_blocks(message: dict, i: int, legacy: dict[str, list[str]]) -> list[dict]:
    text = _plain_text(message.get("content"), i)
    blocks: list[dict] = [{"type": "text", "text": text}] if text else []
    calls = list(message.get("tool_calls") or ())
    if message.get("function_call"):
        call_id = f"call_legacy_{i}"
        name = message["function_call"]["name"]
        legacy.setdefault(name, []).append(call_id)
        calls.append({"id": call_id, "function": message["function_call"]})
    for j, call in enumerate(calls):
        function = call["function"]
        blocks.append(
            {
                "type": "tool_use",
                "id": call["id"],
                "name": function["name"],
                "input": tool_arguments(
                    function["arguments"], f"messages[{i}].tool_calls[{j}]", KIND
                ),
            }
        )
    return blocks


def _tool_result(call_id: str, content, i: int) -> dict:
    block: dict = {"type": "tool_result", "tool_use_id": call_id}
    blocks = _blocks(content, i)
    if blocks:
        only_text = all(b["type"] == "text" for b in blocks)
        block["content"] = "\n".join(b["text"] for b in blocks) if only_text else blocks
    return block


# -- response -----------------------------------------------------------------------------

"""OpenAI chat request -> Gemini generateContent request (the request half of gemini.py).

The decisions (roles, tool pairing, what is refused) are listed in gemini.py's docstring.
"""

from __future__ import annotations

from .. import jsonutil
from ..errors import InvalidRequestError, UnsupportedParameterError
from .base import ChatCall
from .common import (
    THINKING_BUDGETS,
    chat_tools,
    refuse_openai_only,
    split_data_url,
    tool_arguments,
)

KIND = "gemini"
_CONFIG = (  # OpenAI field, generationConfig field, default value that is left unsent
    ("temperature", "temperature", None),
    ("top_p", "topP", None),
    ("top_k", "topK", None),
    ("seed", "seed", None),
    ("n", "candidateCount", 1),
    ("presence_penalty", "presencePenalty", 0),
    ("frequency_penalty", "frequencyPenalty", 0),
)
_TOOL_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


def build_payload(call: ChatCall) -> dict:
    body = call.body
    refuse_openai_only(body, KIND)
    if body.get("logit_bias"):
        raise UnsupportedParameterError("logit_bias", KIND, "Gemini has no token biasing")
    if body.get("parallel_tool_calls") is False:
        raise UnsupportedParameterError(
            "parallel_tool_calls", KIND, "Gemini cannot be limited to one call at a time"
        )
    system, contents = _contents(body["messages"])
    payload: dict = {"contents": contents}
    if system:
        payload["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    config = _generation_config(body, call.max_tokens)
    if config:
        payload["generationConfig"] = config
    functions, choice = chat_tools(body)
    if functions:
        declarations = [_declaration(f) for f in functions]
        payload["tools"] = [{"functionDeclarations": declarations}]
        if choice is not None:
            if isinstance(choice, dict):
                names = [choice["function"]["name"]]
                mode = {"mode": "ANY", "allowedFunctionNames": names}
            else:
                mode = {"mode": _TOOL_MODES[choice]}
            payload["toolConfig"] = {"functionCallingConfig": mode}
    return payload


def _generation_config(body: dict, max_tokens: int | None) -> dict:
    config = {
        ours: body[theirs]
        for theirs, ours, default in _CONFIG
        if body.get(theirs) not in (None, default)
    }
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    fmt = body.get("response_format") or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema:
            config["responseJsonSchema"] = schema
    if body.get("logprobs"):
        config["responseLogprobs"] = True
        if body.get("top_logprobs") is not None:
            config["logprobs"] = body["top_logprobs"]
    effort = body.get("reasoning_effort")
    if effort:  # "none" turns thinking off where the model allows it (2.5 Flash)
        config["thinkingConfig"] = {"thinkingBudget": THINKING_BUDGETS.get(effort, 0)}
    return config


def _declaration(function: dict) -> dict:
    schema = function.get("parameters")
    out = {"name": function["name"], "description": function.get("description")}
    return {k: v for k, v in {**out, "parametersJsonSchema": schema}.items() if v}


def _contents(messages: list[dict]) -> tuple[list[str], list[dict]]:
    system: list[str] = []
    contents: list[dict] = []
    names: dict[str, str] = {}  # tool call id -> function name
    for i, message in enumerate(messages):
        role = message["role"]
        content = message.get("content")
        if role in ("system", "developer"):
            text = _text(content, i, "system messages")
            if text:
                system.append(text)
        elif role == "user":
            _append(contents, "user", _parts(content, i))
        elif role == "assistant":
            parts = _parts(content, i)
            calls = list(message.get("tool_calls") or ())
            if message.get("function_call"):
                calls.append({"id": "", "function": message["function_call"]})
            for j, call in enumerate(calls):
                function = call["function"]
                names[call["id"]] = function["name"]
                args = tool_arguments(function["arguments"], f"messages[{i}].tool_calls[{j}]", KIND)
                parts.append({"functionCall": {"name": function["name"], "args": args}})
            _append(contents, "model", parts)
        else:  # tool, or the legacy function role that names its function itself
            name = names.get(message["tool_call_id"]) if role == "tool" else message.get("name")
            if not name:
                param = "tool_call_id" if role == "tool" else "name"
                raise InvalidRequestError(
                    "a tool result must answer a tool call of an earlier assistant message",
                    param=f"messages[{i}].{param}",
                )
            response = {"name": name, "response": _response(content, i)}
            _append(contents, "user", [{"functionResponse": response}])
    return system, contents


def _append(contents: list[dict], role: str, parts: list[dict]) -> None:
    if not parts:
        return
    last = contents[-1] if contents else None
    result = "functionResponse" in parts[0]  # lists are all results or none
    if last and last["role"] == role and ("functionResponse" in last["parts"][0]) == result:
        last["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": list(parts)})


def _parts(content, i: int) -> list[dict]:
    if content is None or isinstance(content, str):
        return [{"text": content}] if content else []
    parts = []
    for part in content:
        kind = part["type"]
        if kind in ("text", "refusal"):
            text = part.get("text") or part.get("refusal")
            if text:
                parts.append({"text": text})
        elif kind == "image_url":
            parts.append(_inline(part["image_url"]["url"], i, "images"))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            mime = f"audio/{audio.get('format') or 'wav'}"
            parts.append({"inlineData": {"mimeType": mime, "data": audio.get("data") or ""}})
        else:  # file
            parts.append(_inline((part.get("file") or {}).get("file_data") or "", i, "files"))
    return parts


def _inline(url: str, i: int, what: str) -> dict:
    parsed = split_data_url(url)
    if parsed is None:
        raise UnsupportedParameterError(
            f"messages[{i}].content", KIND, f"{what} must be sent inline as base64 data: URLs"
        )
    return {"inlineData": {"mimeType": parsed[0], "data": parsed[1]}}


def _text(content, i: int, where: str) -> str:
    parts = _parts(content, i)
    if any("text" not in part for part in parts):
        raise UnsupportedParameterError(
            f"messages[{i}].content", KIND, f"{where} take only text parts"
        )
    return "".join(part["text"] for part in parts)


def _response(content, i: int) -> dict:
    text = _text(content, i, "tool results")
    try:
        value = jsonutil.loads(text)
    except jsonutil.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"content": text}


# -- response -----------------------------------------------------------------------------

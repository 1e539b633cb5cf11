"""Responses API request -> internal chat body (pure: a validated dict in, a chat dict out).

Decisions, and why:
- `instructions` become the first system message of this request only: like OpenAI, the
  instructions of a previous response are not carried into the next one.
- `previous_response_id` history is the chat messages of the stored conversation (input and
  output), placed after the instructions and before this request's input.
- `function_call` items join the assistant message before them (one assistant turn may hold
  text and several calls); `function_call_output` items become tool messages.
- `reasoning` items sent back as history are dropped: no provider here takes them back, and
  the visible conversation is unchanged without them.
- `metadata` and `store` stay with Facade (they describe the stored response); they are not
  sent upstream. Streams always ask for usage, so the final event has exact counts.
- Files and images named by `file_id` are refused: Facade keeps no file store.
"""

from __future__ import annotations

from ..errors import InvalidRequestError

# Responses fields that go to chat under the same name, when set.
_SAME = ("temperature", "top_p", "user", "safety_identifier", "prompt_cache_key", "service_tier")


def chat_body(body: dict, history: list[dict] | None = None) -> dict:
    """The chat body that runs this Responses request through the pipeline."""
    messages: list[dict] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    messages.extend(history or ())
    messages.extend(input_messages(body["input"]))
    if not messages:
        raise InvalidRequestError("input: the request holds no message to answer", param="input")
    chat: dict = {"model": body.get("model"), "messages": messages, "stream": body["stream"]}
    if body["stream"]:
        chat["stream_options"] = {"include_usage": True}
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    for name in _SAME:
        if body.get(name) is not None:
            chat[name] = body[name]
    effort = (body.get("reasoning") or {}).get("effort")
    if effort:
        chat["reasoning_effort"] = effort
    text = body.get("text") or {}
    if text.get("verbosity"):
        chat["verbosity"] = text["verbosity"]
    fmt = response_format(text.get("format"))
    if fmt:
        chat["response_format"] = fmt
    if body.get("tools"):
        chat["tools"] = [_tool(t) for t in body["tools"]]
        choice = body.get("tool_choice")
        if choice is not None:
            chat["tool_choice"] = (
                choice
                if isinstance(choice, str)
                else {"type": "function", "function": {"name": choice["name"]}}
            )
        if body.get("parallel_tool_calls") is not None:
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    elif body.get("tool_choice") not in (None, "none", "auto"):
        raise InvalidRequestError("tool_choice: requires tools", param="tool_choice")
    return chat


def response_format(fmt: dict | None) -> dict | None:
    """`text.format` -> chat's `response_format`; plain text needs none."""
    if not fmt or fmt["type"] == "text":
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if not fmt.get("name") or "schema" not in fmt:
        raise InvalidRequestError(
            "text.format: a json_schema format needs a name and a schema", param="text.format"
        )
    schema = {k: fmt[k] for k in ("name", "schema", "description", "strict") if k in fmt}
    return {"type": "json_schema", "json_schema": schema}


def _tool(tool: dict) -> dict:
    function = {"name": tool["name"]}
    for name in ("description", "parameters", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def input_messages(value: str | list[dict]) -> list[dict]:
    """The `input` as chat messages."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    messages: list[dict] = []
    for i, item in enumerate(value):
        kind = item["type"]
        if kind == "message":
            messages.append(_message(item, i))
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            content = _tool_output(item["output"], i)
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": content})
        # reasoning items: dropped (see the module docstring)
    return messages


def _message(item: dict, i: int) -> dict:
    role, content = item["role"], item["content"]
    if isinstance(content, str):
        return {"role": role, "content": content}
    if role == "assistant":
        for j, part in enumerate(content):
            if part["type"] not in ("output_text", "input_text", "refusal"):
                param = f"input[{i}].content[{j}]"
                raise InvalidRequestError(
                    f"{param}: assistant messages carry text or refusals only", param=param
                )
        texts = [p["text"] for p in content if p["type"] in ("output_text", "input_text")]
        refusals = [p["refusal"] for p in content if p["type"] == "refusal"]
        if not texts and refusals:
            return {"role": "assistant", "content": None, "refusal": "".join(refusals)}
        return {"role": "assistant", "content": "".join(texts)}
    return {
        "role": role,
        "content": [_part(p, f"input[{i}].content[{j}]") for j, p in enumerate(content)],
    }


def _part(part: dict, param: str) -> dict:
    kind = part["type"]
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": part["text"]}
    if kind == "refusal":
        return {"type": "text", "text": part["refusal"]}
    if kind == "input_image":
        if not part.get("image_url"):
            raise InvalidRequestError(
                f"{param}: images by file_id are not supported; send image_url", param=param
            )
        image = {"url": part["image_url"]}
        if part.get("detail") and part["detail"] != "auto":
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if not part.get("file_data"):  # input_file
        raise InvalidRequestError(
            f"{param}: files by file_id or file_url are not supported; send file_data",
            param=param,
        )
    file = {"file_data": part["file_data"]}
    if part.get("filename"):
        file["filename"] = part["filename"]
    return {"type": "file", "file": file}


def _tool_output(output: str | list[dict], i: int) -> str:
    if isinstance(output, str):
        return output
    texts = []
    for j, part in enumerate(output):
        if part["type"] != "input_text":
            param = f"input[{i}].output[{j}]"
            raise InvalidRequestError(
                f"{param}: function call outputs carry text only here", param=param
            )
        texts.append(part["text"])
    return "".join(texts)

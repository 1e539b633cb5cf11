"""Anthropic Messages request -> the internal chat body (OpenAI's chat shape), pure.

The inverse of `facade/providers/anthropic_request.py` (chat -> Messages), and it shares its
shapes: an image URL is a `data:` URL or http(s), a PDF is a `file` part with a data URL,
tool_use/tool_result pair by id. A Messages request to an Anthropic-kind target does not
go through here on its way out: it is passed natively (see `ChatCall.native`); this body is
what every other provider gets, and what budgets, auto routing and estimates read.

Decisions, and why:
- `system` (a string or text blocks) becomes one system message, blocks joined by a blank line.
- A user turn's `tool_result` blocks become `tool` messages placed before the turn's other
  content (OpenAI wants results right after the calls; Anthropic puts them first in the turn).
  A result's images go in a user message after it (OpenAI's tool messages hold text only).
- An assistant's `thinking` and `redacted_thinking` blocks are Claude's own and carry a
  signature only Claude can check: other providers do not get them.
- `cache_control` is a hint to Anthropic's prompt cache: other providers cache by themselves.
- `thinking` becomes `reasoning_effort` by its budget (adaptive: medium); `disabled` asks for
  nothing. Which providers reason is decided by the caller (a 400 naming `thinking` elsewhere).
- `tool_choice`: auto -> "auto", any -> "required", tool -> that function, none -> "none";
  `disable_parallel_tool_use` -> `parallel_tool_calls: false`.
"""

from __future__ import annotations

from .. import jsonutil

# Thinking budgets at or above these ask for that reasoning effort.
EFFORT_BUDGETS = ((16384, "high"), (4096, "medium"), (0, "low"))


def to_chat(body: dict) -> dict:
    """A validated Messages body -> the internal chat body."""
    messages: list[dict] = []
    system = system_text(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for message in body["messages"]:
        if message["role"] == "user":
            messages.extend(_user_turn(message["content"]))
        else:
            messages.append(_assistant_turn(message["content"]))
    chat: dict = {"model": body["model"], "messages": messages}
    if body.get("max_tokens") is not None:  # count_tokens bodies have none
        chat["max_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = list(body["stop_sequences"])
    if body.get("tools"):
        chat["tools"] = [_tool(t) for t in body["tools"]]
    if body.get("tool_choice"):
        choice = body["tool_choice"]
        chat["tool_choice"] = tool_choice(choice)
        if choice.get("disable_parallel_tool_use") and body.get("tools"):
            chat["parallel_tool_calls"] = False
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        chat["user"] = user
    effort = reasoning_effort(body.get("thinking"))
    if effort:
        chat["reasoning_effort"] = effort
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}  # the closing message_delta needs it
    return chat


def system_text(system) -> str:
    """`system` as one string: a string as it is, text blocks joined by a blank line."""
    if system is None or isinstance(system, str):
        return system or ""
    return "\n\n".join(block["text"] for block in system if block["text"])


def reasoning_effort(thinking: dict | None) -> str | None:
    """Anthropic's `thinking` as OpenAI's `reasoning_effort`; None when it asks for none."""
    if not thinking or thinking["type"] == "disabled":
        return None
    if thinking["type"] == "adaptive":
        return "medium"
    budget = thinking["budget_tokens"]
    return next(effort for floor, effort in EFFORT_BUDGETS if budget >= floor)


def thinking_enabled(body: dict) -> bool:
    return reasoning_effort(body.get("thinking")) is not None


def tool_choice(choice: dict) -> str | dict:  # a string or an object, as OpenAI has it
    kind = choice["type"]
    if kind == "tool":
        return {"type": "function", "function": {"name": choice["name"]}}
    return {"auto": "auto", "any": "required", "none": "none"}[kind]


def _tool(tool: dict) -> dict:
    function = {"name": tool["name"], "parameters": tool["input_schema"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def image_url(source: dict) -> str:
    """An Anthropic image or document source as an OpenAI URL (http(s) or `data:`)."""
    if source["type"] == "url":
        return source["url"]
    return f"data:{source['media_type']};base64,{source['data']}"


def _part(block: dict) -> dict | None:
    """A user content block (text, image, document) as an OpenAI content part."""
    kind = block["type"]
    if kind == "text":
        return {"type": "text", "text": block["text"]} if block["text"] else None
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": image_url(block["source"])}}
    file = {"file_data": image_url(block["source"])}
    if block.get("title"):
        file["filename"] = block["title"]
    return {"type": "file", "file": file}


def _content(parts: list[dict]) -> str | list[dict]:
    """Only text: one string (what every provider takes); else the parts."""
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts) if len(parts) == 1 else _join(parts)
    return parts


def _join(parts: list[dict]) -> str:
    return "\n".join(p["text"] for p in parts)


def _user_turn(content) -> list[dict]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[dict] = []
    rest: list[dict] = []
    for block in content:
        if block["type"] == "tool_result":
            tool, images = _tool_result(block)
            out.append(tool)
            rest.extend(images)
        else:
            part = _part(block)
            if part is not None:
                rest.append(part)
    if rest:
        out.append({"role": "user", "content": _content(rest)})
    elif not out:
        out.append({"role": "user", "content": ""})
    return out


def _tool_result(block: dict) -> tuple[dict, list[dict]]:
    """A tool_result -> (its tool message, the images it held for a user message after it)."""
    content = block.get("content")
    texts: list[str] = []
    others: list[dict] = []
    if isinstance(content, str):
        texts.append(content)
    else:
        for inner in content or ():
            part = _part(inner)
            if part is None:
                continue
            if part["type"] == "text":
                texts.append(part["text"])
            else:
                others.append(part)
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": "\n".join(texts)}, (
        others
    )


def _assistant_turn(content) -> dict:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict] = []
    for block in content:
        if block["type"] == "text":
            texts.append(block["text"])
        elif block["type"] == "tool_use":
            arguments = jsonutil.dumps(block["input"]).decode()
            function = {"name": block["name"], "arguments": arguments}
            calls.append({"id": block["id"], "type": "function", "function": function})
        # thinking blocks are Claude's own: see the module docstring
    message: dict = {"role": "assistant", "content": "".join(texts) or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
    return message

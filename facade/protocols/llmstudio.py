"""LLMstudio's engine API <-> the internal chat shape, pure (dicts in, dicts out).

A request is `{model, chat_input, parameters, is_stream, session_id}`: `chat_input` (a string,
or OpenAI messages) becomes the messages, `parameters` are chat parameters by their OpenAI
names. The answer is LLMstudio's: the chat.completion's fields plus `chat_input`,
`chat_output`, `context` (the messages sent), `provider`, `session_id`, `timestamp`,
`parameters` and `metrics` (Facade's, whose names LLMstudio already uses). A stream is one
JSON object a line: each with `chat_output_stream` (the new text), the last with the whole
`chat_output`, `usage` and `metrics`.
"""

from __future__ import annotations

import time

# Parameters that name what the engine request already says elsewhere.
NOT_PARAMETERS = {
    "model": "the body's model",
    "messages": "chat_input",
    "stream": "is_stream",
    "stream_options": "is_stream",
}


def context(chat_input: str | list) -> list[dict]:  # a string or a list of messages
    if isinstance(chat_input, str):
        return [{"role": "user", "content": chat_input}]
    return chat_input


def to_chat(body: dict) -> dict:
    """The engine request as a chat body (not yet validated: the caller loads it)."""
    chat = dict(body.get("parameters") or {})
    chat["model"] = body["model"]
    chat["messages"] = context(body["chat_input"])
    if body.get("is_stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}  # the last line carries usage
    return chat


def _frame(request: dict, provider: str, request_id: str, created: float) -> dict:
    """The fields every answer and every stream line carries."""
    return {
        "id": f"chatcmpl-{request_id}",
        "chat_input": request["chat_input"],
        "context": context(request["chat_input"]),
        "provider": provider,
        "model": request["model"],
        "session_id": request.get("session_id"),
        "timestamp": created,
        "parameters": request.get("parameters") or {},
    }


def output_text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return ""


def to_answer(data: dict, request: dict, provider: str, request_id: str) -> dict:
    """The pipeline's answer (a chat.completion with metrics) in LLMstudio's shape."""
    choices = data.get("choices") or []
    message = (choices[0] if choices else {}).get("message") or {}
    answer = {
        **data,
        **_frame(request, provider, request_id, time.time()),
        "object": "chat.completion",
        "chat_output": output_text(message),
        "chat_output_stream": "",
        "choices": choices,
        "usage": data.get("usage"),
        "metrics": data.get("metrics"),
    }
    answer.pop("native", None)
    return answer


class StreamLines:
    """One stream's lines: the text so far, so the last line can carry all of it."""

    def __init__(self, request: dict, provider: str, request_id: str):
        self.frame = _frame(request, provider, request_id, time.time())
        self.text: list[str] = []

    def line(self, chunk: dict) -> dict | None:
        """The line for one chunk; None for a chunk with nothing to say."""
        if chunk.get("metrics") is not None:  # the relay's last chunk: usage and metrics
            return {
                **self.frame,
                "object": "chat.completion.chunk",
                "chat_output": "".join(self.text),
                "chat_output_stream": "",
                "choices": chunk.get("choices") or [],
                "usage": chunk.get("usage"),
                "metrics": chunk["metrics"],
            }
        piece = "".join(
            (c.get("delta") or {}).get("content") or ""
            for c in chunk.get("choices") or ()
            if c.get("index", 0) == 0
        )
        finished = any(c.get("finish_reason") for c in chunk.get("choices") or ())
        if not piece and not finished:
            return None
        self.text.append(piece)
        return {
            **self.frame,
            "object": "chat.completion.chunk",
            "chat_output": None,
            "chat_output_stream": piece,
            "choices": chunk.get("choices") or [],
            "metrics": None,
        }

"""Token counts we need before the call: the admission bound (budgets, tpm), rough estimates
(auto selection, the simulator, upstreams that report no usage), and the output-cap rule.

The bound is the most input an upstream can bill for a body, read from the body's JSON bytes
as the upstream will receive them (the validated body, serialized again; what the gateway
adds, such as the upstream model name, comes on top):

    ceil(ASCII bytes / 4) + non-ASCII bytes
    + 4 a message + 1600 an image part + 32 a request
    + the model's context window when a part names an uploaded file (`file_id`)

One token per 4 bytes covers an upstream that bills by the body's size; one per non-ASCII
byte covers any byte-level tokenizer on CJK text or emoji (none emits more tokens than bytes).
Everything the upstream reads is in those bytes: message text, names, tool calls and their
arguments, `tools`, `functions`, `response_format` schemas, and images, audio and files sent
inline (by their size). An image given by URL is billed by its pixels, which the body does
not show: 1600 tokens is the most one image costs at Claude's and GPT-4o's rates. A file
given by id lives at the vendor: nothing bounds it but the context window. The estimates
(`estimate_*`) stay four characters a token: they size choices, never admission.
"""

from __future__ import annotations

from . import jsonutil

PER_MESSAGE = 4
PER_REQUEST = 3
PER_IMAGE = 85

BOUND_PER_MESSAGE = 4  # a vendor's own framing of a message (Gemini's parts) and role tokens
BOUND_PER_IMAGE = 1600  # an image by URL: the most one costs (Claude ~1.15 MP, GPT-4o tiles)
BOUND_PER_REQUEST = 32  # what the gateway adds: stream options, the output cap by name
_ASCII = bytes(range(128))
_IMAGE_KEY = b'"image_url":'  # orjson writes keys as they are: one per image part
_FILE_ID_KEY = b'"file_id":'


def byte_tokens(data: bytes) -> int:
    """ceil(ASCII bytes / 4) + non-ASCII bytes: the bound for JSON bytes, at C speed."""
    size = len(data)
    if data.isascii():
        return (size + 3) // 4
    non_ascii = len(data.translate(None, _ASCII))
    return (size - non_ascii + 3) // 4 + non_ascii


def chat_input_bound(body: dict, stored_file_tokens: int) -> int:
    """The most input tokens an upstream can bill for a chat body (see the module doc).

    `stored_file_tokens` is what a part naming an uploaded file may add: the largest context
    window among the models the request may go to.
    """
    data = jsonutil.dumps(body)
    tokens = byte_tokens(data) + BOUND_PER_REQUEST + BOUND_PER_MESSAGE * len(body["messages"])
    if _IMAGE_KEY in data:
        tokens += BOUND_PER_IMAGE * data.count(_IMAGE_KEY)
    if _FILE_ID_KEY in data:
        tokens += stored_file_tokens
    return tokens


def embedding_input_bound(body: dict) -> int:
    """The most input tokens an embeddings body can bill: its `input`'s JSON bytes, and
    token arrays by their length (a token id is billed as one token however short)."""
    inputs = body.get("input") or ""
    tokens = byte_tokens(jsonutil.dumps(inputs)) + BOUND_PER_REQUEST
    if isinstance(inputs, list) and inputs and not isinstance(inputs[0], str):
        tokens += sum(len(i) if isinstance(i, list) else 1 for i in inputs)
    return tokens


def estimate_text(text: str) -> int:
    return (len(text) + 3) // 4


def estimate_messages(messages: list[dict]) -> int:
    """About four characters a token plus OpenAI's per-message overhead; an image part is
    charged a fixed amount. Sizes auto selection and context checks, never admission."""
    total = PER_REQUEST
    for message in messages:
        total += PER_MESSAGE
        content = message.get("content")
        if isinstance(content, str):
            total += estimate_text(content)
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    total += estimate_text(part.get("text", ""))
                else:
                    total += PER_IMAGE
        for call in message.get("tool_calls") or ():
            function = call.get("function", {})
            total += estimate_text(function.get("name", "") + function.get("arguments", ""))
    return total


def estimate_inputs(inputs: str | list) -> int:
    """Embedding inputs: strings by length, token arrays by their length."""
    if isinstance(inputs, str):
        return estimate_text(inputs)
    if inputs and isinstance(inputs[0], int):
        return len(inputs)
    return sum(len(i) if isinstance(i, list) else estimate_text(i) for i in inputs)


def output_cap(body: dict) -> int | None:
    """The caller's output cap; `max_completion_tokens` wins when both are given."""
    cap = body.get("max_completion_tokens")
    return cap if cap is not None else body.get("max_tokens")


def choices(body: dict) -> int:
    """How many answers the upstream writes (and bills): `n`, 1 when not given."""
    n = body.get("n")
    return n if isinstance(n, int) and n > 1 else 1


def estimate_request(body: dict) -> int:
    """A chat body's input tokens: its messages and its tool schemas."""
    tools = body.get("tools")
    return estimate_messages(body["messages"]) + (
        estimate_text(jsonutil.dumps(tools).decode()) if tools else 0
    )


def estimate_output(data: dict) -> int:
    """A whole answer's output tokens, when the upstream reported no usage."""
    total = 0
    for choice in data.get("choices") or ():
        message = choice.get("message") or {}
        content = message.get("content")
        if isinstance(content, str):
            total += (len(content) + 3) // 4
    return total

"""The fake Gemini API (`/v1beta/models/{model}:generateContent`, `:streamGenerateContent`,
`:embedContent`, `:batchEmbedContents`), honest to the wire format.

It wants the key in the `x-goog-api-key` header (403 without it) and refuses one given as
`?key=` with 400, so a test can prove the gateway never puts it in a URL. It rejects what
the real API rejects before answering (unknown fields, roles other than user/model, empty
parts, a stream without `alt=sse`) in Google's error shape `{"error": {code, message,
status}}`. Streams are `data: <GenerateContentResponse>` events framed with CRLF, as
Google's servers send them; there is no terminal event, the last one carries the
finishReason. Directives are the OpenAI fake's plus `tool=NAME` (answer with a
functionCall to NAME with args {"city": "Paris"}); `nousage` drops `usageMetadata`;
`cached=N` adds N prompt tokens as `cachedContentTokenCount` (part of `promptTokenCount`)
and `reasoning=N` reports N `thoughtsTokenCount` (billed as output, not part of
`candidatesTokenCount`).
"""

from __future__ import annotations

import json
import re
import time

from .protocols import fault
from .upstream import FakeUpstream, Plan, count_prompt_words, model_directives, parse_directives

_PATH = re.compile(r"/models/([^/:]+):(\w+)$")
_FIELDS = {
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
}
_CONFIG_FIELDS = {
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "thinkingConfig",
    "mediaResolution",
}
_PART_KINDS = {"text", "inlineData", "fileData", "functionCall", "functionResponse"}
_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
TOOL_ARGS = {"city": "Paris"}


def error_body(status: int, message: str | None = None) -> dict:
    text = message or {
        400: "The input token count (1048577) exceeds the maximum number of tokens allowed "
        "(1048576). (fake)",
        429: "Resource has been exhausted (e.g. check quota). (fake)",
    }.get(status, f"fake upstream failure {status}")
    return {"error": {"code": status, "message": text, "status": _STATUS.get(status, "UNKNOWN")}}


def handle(fake: FakeUpstream, record: dict, start_response):
    model, method = _PATH.search(record["path"]).groups()
    query = record["query"]

    def refuse(status: int, message: str):
        return fake._json(start_response, status, error_body(status, message))

    if "key" in query:
        return refuse(400, "API keys in the URL are refused by this fake: use x-goog-api-key.")
    if not record["headers"].get("x-goog-api-key"):
        return refuse(
            403,
            "Method doesn't allow unregistered callers (callers without established "
            "identity). Please use API Key or other form of API consumer identity.",
        )
    body = record["body"]
    if not isinstance(body, dict):
        return refuse(400, "Invalid JSON payload received.")
    if method in ("embedContent", "batchEmbedContents"):
        return _embed(fake, record, start_response, model, method, body)
    if method == "streamGenerateContent" and query.get("alt") != ["sse"]:
        return refuse(400, "this fake streams only server-sent events: add alt=sse")
    problem = _problem(body)
    if problem is not None:
        return refuse(400, problem)
    plan = _plan(model, body)
    cap = (body.get("generationConfig") or {}).get("maxOutputTokens")
    plan.bill = plan.billed(record, cap, plan.candidates, None)
    early = fault(fake, plan, start_response, error_body)
    if early is not None:
        return early
    rid = f"fake-{int(time.time() * 1000)}"
    if method == "generateContent":
        return fake._json(start_response, 200, _answer(plan, model, rid))
    return fake.stream(start_response, record, plan, _events(plan, model, rid))


def _problem(body: dict) -> str | None:
    for name in body:
        if name not in _FIELDS:
            return f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
    for name in body.get("generationConfig") or {}:
        if name not in _CONFIG_FIELDS:
            return (
                f'Invalid JSON payload received. Unknown name "{name}" at '
                "'generation_config': Cannot find field."
            )
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for i, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            return "Please use a valid role: user, model."
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return (
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            )
        for part in parts:
            kinds = _PART_KINDS & set(part)
            if len(kinds) != 1:
                return f"* GenerateContentRequest.contents[{i}].parts: a part holds one datum."
            if "functionResponse" in part and not part["functionResponse"].get("name"):
                return f"* GenerateContentRequest.contents[{i}]: function_response.name is empty"
            if "functionCall" in part and not isinstance(part["functionCall"].get("args"), dict):
                return f"* GenerateContentRequest.contents[{i}]: function_call.args must be a map"
    return None


def _texts(parts) -> list[str]:
    return [p["text"] for p in parts or () if isinstance(p.get("text"), str)]


def _plan(model: str, body: dict) -> Plan:
    contents = body["contents"]
    # the last user turn decides; after a function response it holds no directives
    last_user = next(
        (" ".join(_texts(c.get("parts"))) for c in reversed(contents) if c.get("role") == "user"),
        "",
    )
    directives = {**model_directives(model), **parse_directives(last_user)}
    texts = _texts((body.get("systemInstruction") or {}).get("parts"))
    for content in contents:
        texts.extend(_texts(content.get("parts")))
    plan = Plan(directives, count_prompt_words(texts))
    config = body.get("generationConfig") or {}
    plan.candidates = int(config.get("candidateCount", 1))
    plan.finish = "STOP"
    cap = config.get("maxOutputTokens")
    if cap is not None and len(plan.tokens) > cap:
        plan.tokens = plan.tokens[:cap]
        plan.finish = "MAX_TOKENS"
    return plan


def _usage(plan: Plan, output_per_candidate: int) -> dict:
    prompt, output = plan.bill or (plan.prompt_tokens, output_per_candidate * plan.candidates)
    cached, thoughts = plan.count("cached"), plan.count("reasoning")
    prompt += cached
    usage = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": output,
        "totalTokenCount": prompt + output + thoughts,
    }
    if cached:
        usage["cachedContentTokenCount"] = cached
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _response(plan: Plan, model: str, rid: str, parts: list, finish: str | None, done: int):
    candidates = []
    for i in range(plan.candidates):
        candidate = {"content": {"parts": parts, "role": "model"}, "index": i}
        if finish:
            candidate["finishReason"] = finish
        candidates.append(candidate)
    out = {"candidates": candidates, "modelVersion": model, "responseId": rid}
    if not plan.has("nousage"):
        out["usageMetadata"] = _usage(plan, done)
    return out


def _answer(plan: Plan, model: str, rid: str) -> dict:
    if plan.has("tool"):
        parts = [{"functionCall": {"name": plan.d["tool"], "args": TOOL_ARGS}}]
    else:
        parts = [{"text": plan.text}]
    answer = _response(plan, model, rid, parts, plan.finish, len(plan.tokens))
    answer["usageMetadata"] = _usage(plan, len(plan.tokens))  # always there when not streamed
    return answer


def _sse(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\r\n\r\n"


def _events(plan: Plan, model: str, rid: str):
    if plan.has("tool"):
        parts = [{"functionCall": {"name": plan.d["tool"], "args": TOOL_ARGS}}]
        events = [_response(plan, model, rid, parts, plan.finish, len(plan.tokens))]
    else:
        last = len(plan.tokens) - 1
        events = [
            _response(
                plan,
                model,
                rid,
                [{"text": plan.piece(i)}],
                plan.finish if i == last else None,
                i + 1,
            )
            for i in range(len(plan.tokens))
        ]
    cut = int(plan.d["cut"]) if "cut" in plan.d else None
    mid = int(plan.d["midstream"]) if "midstream" in plan.d else None
    for sent, event in enumerate(events):
        if cut is not None and sent >= cut:
            return
        if mid is not None and sent >= mid:
            yield _sse(error_body(500, "fake upstream failed mid-stream"))
            return
        yield _sse(event)


def _embed(fake: FakeUpstream, record: dict, start_response, model: str, method: str, body):
    requests = body.get("requests") if method == "batchEmbedContents" else [body]
    if not isinstance(requests, list) or not requests:
        return fake._json(start_response, 400, error_body(400, "requests must not be empty"))
    texts = []
    for request in requests:
        if method == "batchEmbedContents" and request.get("model") != f"models/{model}":
            message = (
                f"Model name in request ({request.get('model')}) does not match models/{model}"
            )
            return fake._json(start_response, 400, error_body(400, message))
        texts.append(" ".join(_texts((request.get("content") or {}).get("parts"))))
    plan = Plan({**model_directives(model), **parse_directives(" ".join(texts))}, 0)
    early = fault(fake, plan, start_response, error_body)
    if early is not None:
        return early
    vectors = []
    for i, request in enumerate(requests):
        size = int(request.get("outputDimensionality") or 3)
        vectors.append({"values": [round(0.1 * (i + 1), 4)] + [0.25] * (size - 1)})
    answer = (
        {"embeddings": vectors} if method == "batchEmbedContents" else {"embedding": vectors[0]}
    )
    return fake._json(start_response, 200, answer)

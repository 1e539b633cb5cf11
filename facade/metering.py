"""Measure one call: tokens, cost, latency, time to first token, pace.

Tokens come from the answer's `usage` in OpenAI's shape (each provider translates its vendor's
counts into it): `prompt_tokens` is every input token, `prompt_tokens_details.cached_tokens`
of them read from the prompt cache and `prompt_tokens_details.cache_write_tokens` written to
it (Anthropic's cache creation); `completion_tokens` includes
`completion_tokens_details.reasoning_tokens`. The cost is priced from these, as billed.

Non-streaming answers arrive whole, so their first token comes with the last:
time_to_first_token_s equals latency_s and inter_token_latency_s is 0. Streams measure from
the request's start to the first chunk carrying content, and between content chunks after.
"""

from __future__ import annotations

from time import perf_counter

from .config import ModelConfig


class Meter:
    __slots__ = ("content_chunks", "end", "first", "last", "start")

    def __init__(self) -> None:
        self.start = perf_counter()
        self.first: float | None = None
        self.last: float | None = None
        self.end: float | None = None
        self.content_chunks = 0

    def content(self) -> None:
        """A chunk carrying generated content arrived."""
        now = perf_counter()
        if self.first is None:
            self.first = now
        self.last = now
        self.content_chunks += 1

    def finish(self) -> None:
        if self.end is None:
            self.end = perf_counter()

    def metrics(
        self,
        model: ModelConfig,
        provider: str,
        upstream_model: str,
        input_tokens: int,
        output_tokens: int,
        attempts: int = 1,
        details: tuple[int, int, int] = (0, 0, 0),
    ) -> dict:
        """`details` is (cached input, cache-write input, reasoning), from `usage_details`."""
        self.finish()
        latency = self.end - self.start
        if self.first is None:
            ttft, generation = latency, latency
        else:
            ttft, generation = self.first - self.start, self.last - self.first
        if output_tokens > 1 and self.first is not None and generation > 0:
            itl = generation / (output_tokens - 1)
            tps = (output_tokens - 1) / generation
        else:
            itl = 0.0
            tps = output_tokens / latency if latency > 0 else 0.0
        cached, written, reasoning = details
        cost = model.cost_usd(input_tokens, output_tokens, cached, written)
        return {
            "input_tokens": input_tokens,
            "cached_input_tokens": cached,
            "cache_write_input_tokens": written,
            "output_tokens": output_tokens,
            "reasoning_tokens": reasoning,
            "total_tokens": input_tokens + output_tokens,
            "cost_usd": round(cost, 10),
            "latency_s": round(latency, 6),
            "time_to_first_token_s": round(ttft, 6),
            "inter_token_latency_s": round(itl, 6),
            "tokens_per_second": round(tps, 3),
            "provider": provider,
            "upstream_model": upstream_model,
            "attempts": attempts,
            "cache_hit": False,
        }


def usage_tokens(usage: dict | None) -> tuple[int, int] | None:
    """(input, output) from an OpenAI usage object, or None when it is missing or odd."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if type(prompt) is int and type(completion) is int and prompt >= 0 and completion >= 0:
        return prompt, completion
    return None  # a bool is an int to isinstance, not a count


NO_DETAILS = (0, 0, 0)


def _count(details: object, name: str) -> int:
    value = details.get(name) if isinstance(details, dict) else None
    return value if type(value) is int and value > 0 else 0


def usage_details(usage: dict, input_tokens: int, output_tokens: int) -> tuple[int, int, int]:
    """(cached input, cache-write input, reasoning) from an OpenAI usage object's details.

    Odd counts are clamped so the cost can never go negative: cached plus written input is
    at most the input, reasoning at most the output.
    """
    prompt = usage.get("prompt_tokens_details")
    completion = usage.get("completion_tokens_details")
    if prompt is None and completion is None:
        return NO_DETAILS
    cached = min(_count(prompt, "cached_tokens"), input_tokens)
    written = min(_count(prompt, "cache_write_tokens"), input_tokens - cached)
    reasoning = min(_count(completion, "reasoning_tokens"), output_tokens)
    return cached, written, reasoning


def usage_of(metrics: dict) -> dict:
    """An OpenAI usage object from measured metrics, details given when not zero."""
    usage = {
        "prompt_tokens": metrics["input_tokens"],
        "completion_tokens": metrics["output_tokens"],
        "total_tokens": metrics["total_tokens"],
    }
    prompt = {}
    if metrics.get("cached_input_tokens"):
        prompt["cached_tokens"] = metrics["cached_input_tokens"]
    if metrics.get("cache_write_input_tokens"):
        prompt["cache_write_tokens"] = metrics["cache_write_input_tokens"]
    if prompt:
        usage["prompt_tokens_details"] = prompt
    if metrics.get("reasoning_tokens"):
        usage["completion_tokens_details"] = {"reasoning_tokens": metrics["reasoning_tokens"]}
    return usage

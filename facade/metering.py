"""Measure one call: tokens, cost, latency, time to first token, pace.

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
    ) -> dict:
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
        return {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
            "cost_usd": round(model.cost_usd(input_tokens, output_tokens), 10),
            "latency_s": round(latency, 6),
            "time_to_first_token_s": round(ttft, 6),
            "inter_token_latency_s": round(itl, 6),
            "tokens_per_second": round(tps, 3),
            "provider": provider,
            "upstream_model": upstream_model,
            "attempts": attempts,
        }


def usage_tokens(usage: dict | None) -> tuple[int, int] | None:
    """(input, output) from an OpenAI usage object, or None when it is missing or odd."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(prompt, int) and isinstance(completion, int) and prompt >= 0 and completion >= 0:
        return prompt, completion
    return None

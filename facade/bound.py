"""The admission bound: the most a request can cost, and the tokens its key's tpm counts.

A request is admitted only if this fits what its key has left, so it must count everything
an upstream bills: the body's input (see `estimates.chat_input_bound`), `n` times the output
cap, at the dearest prices of every model the plan may route to.
"""

from __future__ import annotations

import math

from .config import ModelConfig, TargetConfig
from .estimates import chat_input_bound, choices, embedding_input_bound, output_cap
from .store.schema import NANO


def largest_cost_nusd(
    plan: list[tuple[ModelConfig, TargetConfig]], input_tokens: int, cap: int | None, n: int = 1
) -> int:
    """The most this request can cost: its input bound at the dearest input price (a cache
    write costs more than plain input on Anthropic) plus `n` times its output cap, at the
    prices of the most expensive model it may be routed to (auto plans hold several)."""
    worst = 0.0
    seen = None
    for model, _target in plan:
        if model is seen:
            continue
        seen = model
        out = n * (cap if cap is not None else model.max_output_tokens)
        cost = input_tokens * model.dearest_input_cost_per_1m + out * model.output_cost_per_1m
        worst = max(worst, cost)
    return math.ceil(worst * (NANO / 1_000_000))


def demand(
    plan: list[tuple[ModelConfig, TargetConfig]], body: dict, native: dict | None = None
) -> tuple[int, int | None, int, int]:
    """(input bound, caller's cap, n, tokens for tpm) of a chat or embeddings body.

    The input bound adds the longest upstream model name of the plan (the gateway puts it in
    the body); tpm counts the input bound plus `n` times the output cap, the model's when
    the caller gives none (it is what goes upstream). A `native` body (the client's own
    vendor body, sent as it is to a target of that vendor) is bounded too: the larger wins.
    """
    extra = (max(len(target.model) for _, target in plan) + 3) // 4
    if "messages" not in body:  # embeddings: input only
        input_tokens = embedding_input_bound(body) + extra
        return input_tokens, 0, 1, input_tokens
    windows = max(model.context_window for model, _ in plan)
    input_tokens = chat_input_bound(body, windows) + extra
    if native is not None and isinstance(native.get("messages"), list):
        input_tokens = max(input_tokens, chat_input_bound(native, windows) + extra)
    cap, n = output_cap(body), choices(body)
    most = cap if cap is not None else max(model.max_output_tokens for model, _ in plan)
    return input_tokens, cap, n, input_tokens + n * most

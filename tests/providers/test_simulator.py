"""The simulator: stop sequences, the output cap, n choices, answers ending at a sentence."""

from __future__ import annotations

from facade.providers.base import ChatCall
from facade.providers.simulator import (
    SimulatorProvider,
    answers,
    cut_at_stop,
    fit_to_cap,
    natural_answer,
)
from tests.builders import model_config, provider_config


def call(text: str, max_tokens: int | None = None, **body) -> ChatCall:
    return ChatCall(
        body={"messages": [{"role": "user", "content": text}], **body},
        model=model_config("sim"),
        upstream_model="sim",
        max_tokens=max_tokens,
        request_id="rid",
        stream=False,
    )


def provider() -> SimulatorProvider:
    return SimulatorProvider(provider_config("sim", "simulator", ttft_s=0, tokens_per_s=10_000))


def test_a_natural_answer_ends_at_a_sentence():
    for index in range(3):
        text = "".join(natural_answer("Hello there", index))
        assert text.startswith("You said: 'Hello there'. ") and text.endswith(".")
        assert not text.endswith(" ")
    assert natural_answer("Hi", 0) != natural_answer("Hi", 1), "each choice says another thing"


def test_count_to_is_answered_by_counting():
    assert "".join(natural_answer("please count to 5")) == "1, 2, 3, 4, 5."


def test_stop_sequences_cut_before_the_first_one():
    pieces = natural_answer("count to 20")
    assert "".join(cut_at_stop(pieces, ["11"])) == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, "
    assert "".join(cut_at_stop(pieces, ["zzz", "5,"])) == "1, 2, 3, 4, "
    assert cut_at_stop(pieces, ["zzz"]) is None
    mid = cut_at_stop(["abc", "def"], ["e"])
    assert mid == ["abc", "d"], "a stop inside a token keeps the token's head"


def test_the_cap_prefers_a_sentence_end_and_otherwise_cuts():
    pieces = ["You said: 'x'. "] + [f"w{i} " for i in range(9)] + ["end. "] + ["more "] * 10
    kept, finish = fit_to_cap(pieces, 14)
    assert (len(kept), finish, "".join(kept)[-4:]) == (11, "stop", "end.")
    kept, finish = fit_to_cap(pieces, 4)
    assert (len(kept), finish) == (4, "length")
    assert fit_to_cap(pieces, 100) == (pieces, "stop")


def test_complete_honours_stop_cap_and_n():
    sim = provider()
    body = sim.complete(call("count to 20", stop="11"))
    assert body["choices"][0]["message"]["content"] == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, "
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 10

    body = sim.complete(call("Tell me a story", max_tokens=5))
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 5

    body = sim.complete(call("Hi", n=3, stop=["money"]))
    choices = body["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2]
    assert len({c["message"]["content"] for c in choices}) == 3
    assert all("money" not in c["message"]["content"] for c in choices)
    pieces = sum(len(c.pieces) for c in answers(call("Hi", n=3, stop=["money"])))
    assert body["usage"]["completion_tokens"] == pieces


def test_stream_matches_complete_for_every_choice():
    sim = provider()
    ask = call("count to 12", max_tokens=30, n=2, stop=[", 9"])
    whole = sim.complete(ask)
    stream = sim.stream(ask)
    texts: dict[int, str] = {0: "", 1: ""}
    finishes: dict[int, str] = {}
    usage = None
    try:
        for chunk in stream:
            for choice in chunk["choices"]:
                texts[choice["index"]] += choice["delta"].get("content") or ""
                if choice["finish_reason"]:
                    finishes[choice["index"]] = choice["finish_reason"]
            usage = chunk.get("usage") or usage
    finally:
        stream.close()
    assert texts == {c["index"]: c["message"]["content"] for c in whole["choices"]}
    assert texts[0] == "1, 2, 3, 4, 5, 6, 7, 8"
    assert finishes == {0: "stop", 1: "stop"}
    assert usage == whole["usage"]

"""The response cache's cost: facade CPU per request for a miss and a hit, next to no cache.

Same instance, same upstream, three keys' worth of traffic: `plain` (no cache) and `cached`
sending a fresh body every request (all misses: lookup, call, store), then `cached` sending
one body (all hits). Phases alternate for a few rounds (in turn forwards and backwards); the
ratios are the median of each round's ratio, whose phases ran side by side under the same
load, so a burst of load from elsewhere on the machine moves one sample, not the result
(each round's figure is printed in brackets).
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Iterator

from bench.load import build_request, run_for
from bench.procs import cpu_seconds

ROUNDS = 5
CACHE_CONFIG = {"ttl_s": 3600, "max_entries": 100_000}
CACHED = "sk-bench-cached-0123456789ab"
CACHED_KEY = {"name": "cached", "key": CACHED, "models": ["*"], "cache": True}
MISS_LIMIT = 1.05  # a miss may cost at most 5 % more CPU than no cache


def _request(port: int, key: str, text: str) -> bytes:
    payload = {"model": "bench", "messages": [{"role": "user", "content": text}], "max_tokens": 64}
    return build_request(
        f"127.0.0.1:{port}",
        "/api/v1/chat/completions",
        json.dumps(payload, separators=(",", ":")).encode(),
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )


def _fresh(port: int, key: str, tag: str) -> Iterator[bytes]:
    """A different body every request (same size give or take a digit): every one a miss."""
    for i in itertools.count():
        yield _request(port, key, f"Say hello in one short sentence, please. {tag}-{i:08d}")


def cache_rows(
    port: int,
    worker: int,
    label: str,
    seconds: float,
    plain_key: str,
) -> list[tuple[str, str, str]]:
    """CPU per request (median of ROUNDS) for no cache, a miss and a hit on one instance."""
    addr = ("127.0.0.1", port)
    same = _request(port, CACHED, "Say hello in one short sentence, please. hit")
    run_for(addr, same, 8, 0, requests=20)  # warm, and store the entry the hits will read
    run_for(addr, _fresh(port, CACHED, "warm"), 8, 0, requests=20)
    run_for(addr, _fresh(port, plain_key, "warm"), 8, 0, requests=20)
    samples: dict[str, list[float]] = {"off": [], "miss": [], "hit": []}
    errors = 0
    for r in range(ROUNDS):
        phases = [
            ("off", _fresh(port, plain_key, f"off{r}")),
            ("miss", _fresh(port, CACHED, f"miss{r}")),
            ("hit", same),
        ]
        for name, raw in phases if r % 2 == 0 else reversed(phases):
            cpu0 = cpu_seconds(worker)
            res = run_for(addr, raw, 64, seconds)
            samples[name].append((cpu_seconds(worker) - cpu0) / max(1, res.completed))
            errors += res.errors
    off, miss, hit = (statistics.median(samples[n]) for n in ("off", "miss", "hit"))
    # Each round's phases ran side by side, under the same load: compare within rounds.
    miss_x = statistics.median(m / o for m, o in zip(samples["miss"], samples["off"], strict=True))
    hit_x = statistics.median(h / o for h, o in zip(samples["hit"], samples["off"], strict=True))
    rounds = {name: " ".join(f"{v * 1e6:.0f}" for v in values) for name, values in samples.items()}
    verdict = f"{'ok' if miss_x <= MISS_LIMIT else 'MISSED'} (miss <= {MISS_LIMIT:.2f}x of off)"
    return [
        (f"cache ({label}): CPU per request, cache off", f"{_ms(off)} [us: {rounds['off']}]", ""),
        (
            f"cache ({label}): CPU per request, miss",
            f"{_ms(miss)} = {miss_x:.3f}x of off [us: {rounds['miss']}]",
            verdict,
        ),
        (
            f"cache ({label}): CPU per request, hit",
            f"{_ms(hit)} = {hit_x:.3f}x of off [us: {rounds['hit']}], errors {errors}",
            "",
        ),
    ]


def _ms(x: float) -> str:
    return f"{x * 1000:.3f} ms"

"""The current shape of the store's tables, for SQLAlchemy Core queries (admin, reports).

The DDL that creates and changes them is in `migrations.py`; keep the two in step.
Timestamps are UTC epoch seconds; money is integer nano-dollars (`*_nusd`).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Integer, MetaData, String, Table, Text

metadata = MetaData()

NANO = 1_000_000_000  # nano-dollars per dollar

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(8), nullable=False),
    Column("name", String(128), nullable=False),
    Column("models", Text, nullable=False),  # JSON list
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("budget_usd", Float),
    Column("max_parallel", Integer),  # migration 5
    Column("budget_period", String(8), nullable=False),
    Column("expires_at", Float),
    Column("metadata_json", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("version", Integer, nullable=False),
    Column("cache", Boolean, nullable=False),  # answers repeated requests from the cache
)

budget_ledger = Table(
    "budget_ledger",
    metadata,
    Column("key_id", String(40), primary_key=True),
    Column("period_start", String(10), primary_key=True),
    Column("spent_nusd", BigInteger, nullable=False),
    Column("reserved_nusd", BigInteger, nullable=False),
)

usage_records = Table(
    "usage_records",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("ts", Float, nullable=False),
    Column("day", String(10), nullable=False),
    Column("key_id", String(40), nullable=False),
    Column("model", String(128), nullable=False),
    Column("provider", String(64)),
    Column("upstream_model", String(256)),
    Column("input_tokens", Integer, nullable=False),  # every input token, cached or not
    Column("output_tokens", Integer, nullable=False),
    Column("cost_nusd", BigInteger, nullable=False),
    Column("latency_s", Float, nullable=False),
    Column("status", Integer, nullable=False),
    # The id the caller sees: its X-Request-ID if it sent one, else the server's.
    Column("request_id", String(128), nullable=False),
    Column("ttft_s", Float),  # time to first token; NULL for failures and old rows
    Column("cached_input_tokens", Integer, nullable=False),  # read from the prompt cache
    Column("session_id", String(128)),  # the client's conversation id (LLMstudio), if any
    Column("cache_hit", Boolean, nullable=False),  # answered from the response cache, at no cost
    # The server-made id, unique: a batch written twice (a lost acknowledgement) counts once.
    Column("server_request_id", String(64), unique=True),
)


stored_responses = Table(
    "stored_responses",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key_id", String(40), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("body", Text, nullable=False),  # JSON: {"response": ..., "context": [messages]}
)

budget_holds = Table(
    "budget_holds",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("key_id", String(40), nullable=False),
    Column("period_start", String(10), nullable=False),
    Column("amount_nusd", BigInteger, nullable=False),
    Column("owner", String(96), nullable=False),
    Column("ts", Float, nullable=False),
)

store_owners = Table(
    "store_owners",
    metadata,
    Column("owner", String(96), primary_key=True),
    Column("instance", String(64), nullable=False),
    Column("expires_at", Float, nullable=False),
)


def to_nusd(usd: float) -> int:
    return round(usd * NANO)


def to_usd(nusd: int | None) -> float:
    return round((nusd or 0) / NANO, 9)

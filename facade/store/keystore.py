"""Keys created through the admin API or the CLI: stored as SHA-256 hashes, never plaintext.

The plaintext exists only in the answer to create and rotate. Lookups on the request path
read the key's row by hash every time (one indexed read): a revoked, expired or rotated key is
refused at once by every worker of every replica, with no cache to go stale. What is cached
is the parsed `ApiKey`, by the row's `version`, which every change bumps.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from sqlalchemy import insert, select, update

from .. import jsonutil
from ..errors import AuthenticationError, InvalidRequestError, NotFoundError
from ..keys import ApiKey, hash_key, key_prefix
from . import Store
from .schema import api_keys

SOURCE = "store"
EDITABLE = (
    "name", "models", "rpm", "tpm", "max_parallel", "budget_usd", "budget_period", "expires_at",
    "metadata", "cache",
)  # fmt: skip
_LOOKUP = (
    "SELECT id, version, revoked_at, expires_at, name, prefix, models, rpm, tpm, budget_usd,"
    " budget_period, metadata_json, max_parallel, cache FROM api_keys WHERE key_hash = ?"
)


def new_plaintext() -> str:
    return "sk-" + secrets.token_urlsafe(32)


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _datetime(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class KeyStore:
    def __init__(self, store: Store, known_models: set[str]) -> None:
        self.store = store
        self.known_models = set(known_models) | {"*", "auto"}
        self._lookup_sql = store.q(_LOOKUP)
        self._parsed: dict[str, tuple[int, ApiKey]] = {}

    # -- the request path ------------------------------------------------------------------
    def lookup(self, digest: str) -> ApiKey | None:
        """The live key with this hash; None when unknown; 401 when revoked."""
        sql = self._lookup_sql
        rows = self.store.autocommit(lambda cur: cur.execute(sql, (digest,)).fetchall())
        if not rows:
            return None
        row = rows[0]
        if row[2] is not None:
            raise AuthenticationError("this API key has been revoked")
        cached = self._parsed.get(row[0])
        if cached is not None and cached[0] == row[1]:
            return cached[1]
        key = ApiKey(
            id=row[0],
            name=row[4],
            prefix=row[5],
            models=tuple(jsonutil.loads(row[6])),
            rpm=row[7],
            tpm=row[8],
            budget_usd=row[9],
            budget_period=row[10],
            expires_at=_datetime(row[3]),
            metadata=jsonutil.loads(row[11]),
            max_parallel=row[12],
            source=SOURCE,
            cache=bool(row[13]),
        )
        self._parsed[row[0]] = (row[1], key)
        return key

    # -- admin -------------------------------------------------------------------------------
    def create(self, fields: dict) -> tuple[dict, str]:
        """Store a new key; returns its public view and the plaintext, shown this once."""
        self._check_models(fields.get("models", []))
        plaintext = new_plaintext()
        now = time.time()
        row = {
            "id": "key-" + secrets.token_hex(8),
            "key_hash": hash_key(plaintext),
            "prefix": key_prefix(plaintext),
            "name": fields["name"],
            "models": jsonutil.dumps(list(fields.get("models", []))).decode(),
            "rpm": fields.get("rpm"),
            "tpm": fields.get("tpm"),
            "budget_usd": fields.get("budget_usd"),
            "max_parallel": fields.get("max_parallel"),
            "budget_period": fields.get("budget_period", "monthly"),
            "expires_at": _epoch(fields.get("expires_at")),
            "metadata_json": jsonutil.dumps(fields.get("metadata", {})).decode(),
            "created_at": now,
            "updated_at": now,
            "revoked_at": None,
            "version": 1,
            "cache": bool(fields.get("cache", False)),
        }
        with self.store.transaction() as conn:
            conn.execute(insert(api_keys).values(row))
        return public(row), plaintext

    def get(self, key_id: str) -> dict:
        with self.store.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
        if row is None or row["revoked_at"] is not None:
            raise NotFoundError(f"no API key with id '{key_id}'", param="id")
        return public(row)

    def list(self, include_revoked: bool = False) -> list[dict]:
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self.store.engine.connect() as conn:
            return [public(row) for row in conn.execute(query).mappings()]

    def names(self) -> dict[str, str]:
        """Every stored key's name by id, revoked ones included (for usage reports)."""
        with self.store.engine.connect() as conn:
            return dict(conn.execute(select(api_keys.c.id, api_keys.c.name)).all())

    def update(self, key_id: str, changes: dict) -> dict:
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise InvalidRequestError(f"{sorted(unknown)[0]}: cannot be changed")
        values: dict = {}
        for name, value in changes.items():
            if name == "models":
                self._check_models(value)
                values["models"] = jsonutil.dumps(list(value)).decode()
            elif name == "metadata":
                values["metadata_json"] = jsonutil.dumps(value).decode()
            elif name == "expires_at":
                values["expires_at"] = _epoch(value)
            else:
                values[name] = value
        return self._change(key_id, values)

    def revoke(self, key_id: str) -> dict:
        return self._change(key_id, {"revoked_at": time.time()})

    def rotate(self, key_id: str) -> tuple[dict, str]:
        """A new plaintext for the same key (same id, limits, ledger); the old one stops."""
        plaintext = new_plaintext()
        view = self._change(
            key_id, {"key_hash": hash_key(plaintext), "prefix": key_prefix(plaintext)}
        )
        return view, plaintext

    def _change(self, key_id: str, values: dict) -> dict:
        values = {**values, "updated_at": time.time(), "version": api_keys.c.version + 1}
        live = (api_keys.c.id == key_id) & api_keys.c.revoked_at.is_(None)
        with self.store.transaction() as conn:
            done = conn.execute(update(api_keys).where(live).values(values)).rowcount
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
        if not done or row is None:
            raise NotFoundError(f"no API key with id '{key_id}'", param="id")
        return public(row)

    def _check_models(self, models: list[str]) -> None:
        for i, name in enumerate(models):
            if name not in self.known_models:
                raise InvalidRequestError(
                    f"models[{i}]: unknown model '{name}'", param=f"models[{i}]"
                )


def public(row) -> dict:  # a row mapping
    """What the admin API and the CLI may show: never the hash, never the plaintext."""
    return {
        "id": row["id"],
        "prefix": row["prefix"],
        "name": row["name"],
        "models": jsonutil.loads(row["models"]),
        "rpm": row["rpm"],
        "tpm": row["tpm"],
        "max_parallel": row["max_parallel"],
        "budget_usd": row["budget_usd"],
        "budget_period": row["budget_period"],
        "expires_at": _datetime(row["expires_at"]),
        "metadata": jsonutil.loads(row["metadata_json"]),
        "cache": bool(row["cache"]),
        "source": SOURCE,
        "created_at": _datetime(row["created_at"]),
        "updated_at": _datetime(row["updated_at"]),
        "revoked_at": _datetime(row["revoked_at"]),
    }


def config_view(key: ApiKey) -> dict:
    """A config-file key as the admin API lists it (read-only)."""
    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "models": list(key.models),
        "rpm": key.rpm,
        "tpm": key.tpm,
        "max_parallel": key.max_parallel,
        "budget_usd": key.budget_usd,
        "budget_period": key.budget_period,
        "expires_at": key.expires_at,
        "metadata": dict(key.metadata),
        "cache": key.cache,
        "source": key.source,
        "created_at": None,
        "updated_at": None,
        "revoked_at": None,
    }

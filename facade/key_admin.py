"""Key and usage administration shared by the admin API and the CLI.

Keys from the config file and keys from the store are listed side by side; the config's are
read-only here (change the file instead): updating, rotating or revoking one is a 400 that
says so. Every view carries the spend of the key's current budget period.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

from .errors import InvalidRequestError, NotFoundError
from .gateway import Gateway
from .keys import ApiKey
from .store import model_stats, reports
from .store.keystore import KeyStore, config_view
from .store.periods import period_starts
from .store.schema import to_usd

REPORT_DAYS = 30  # the usage report's range when `from` is not given


def _keystore(gw: Gateway) -> KeyStore:
    if gw.keystore is None:
        raise NotFoundError("no key store is configured")
    return gw.keystore


def _config_key(gw: Gateway, key_id: str) -> ApiKey | None:
    if not key_id.startswith("cfg-"):
        return None
    for key in gw.keyring.all():
        if key.id == key_id:
            return key
    raise NotFoundError(f"no API key with id '{key_id}'", param="id")


def _read_only(key: ApiKey) -> InvalidRequestError:
    return InvalidRequestError(
        f"the key '{key.name}' ({key.id}) is declared in the config file and is read-only "
        "here; change it in the file"
    )


def with_spend(gw: Gateway, views: list[dict]) -> list[dict]:
    """Add the current period's start, settled spend and in-flight reservations."""
    starts = period_starts(datetime.fromtimestamp(time.time(), UTC).date())
    wanted = [(v["id"], starts[v["budget_period"]]) for v in views]
    found = reports.spend(gw.store, wanted) if gw.store is not None else {}
    held = gw.accounting.held_nusd(wanted)  # with Redis, the holds are there
    for view, pair in zip(views, wanted, strict=True):
        spent, reserved = found.get(pair, (0.0, 0.0))
        if held is not None:
            reserved = to_usd(held.get(pair, 0))
        view.update(period_start=pair[1], spend_usd=spent, reserved_usd=reserved)
    return views


def list_keys(gw: Gateway, include_revoked: bool = False) -> list[dict]:
    views = [config_view(k) for k in gw.keyring.all()]
    if gw.keystore is not None:
        views.extend(gw.keystore.list(include_revoked))
    return with_spend(gw, views)


def get_key(gw: Gateway, key_id: str) -> dict:
    config_key = _config_key(gw, key_id)
    view = config_view(config_key) if config_key else _keystore(gw).get(key_id)
    return with_spend(gw, [view])[0]


def create_key(gw: Gateway, fields: dict) -> tuple[dict, str]:
    view, plaintext = _keystore(gw).create(fields)
    return with_spend(gw, [view])[0], plaintext


def update_key(gw: Gateway, key_id: str, changes: dict) -> dict:
    config_key = _config_key(gw, key_id)
    if config_key:
        raise _read_only(config_key)
    if not changes:
        raise InvalidRequestError("nothing to change: give at least one field")
    return with_spend(gw, [_keystore(gw).update(key_id, changes)])[0]


def revoke_key(gw: Gateway, key_id: str) -> dict:
    config_key = _config_key(gw, key_id)
    if config_key:
        raise _read_only(config_key)
    return with_spend(gw, [_keystore(gw).revoke(key_id)])[0]


def rotate_key(gw: Gateway, key_id: str) -> tuple[dict, str]:
    config_key = _config_key(gw, key_id)
    if config_key:
        raise _read_only(config_key)
    view, plaintext = _keystore(gw).rotate(key_id)
    return with_spend(gw, [view])[0], plaintext


def _report_range(date_from: date | None, date_to: date | None) -> tuple[date, date]:
    date_to = date_to or datetime.now(UTC).date()
    date_from = date_from or date_to - timedelta(days=REPORT_DAYS - 1)
    if date_from > date_to:
        raise InvalidRequestError("from: must not be after 'to'", param="from")
    return date_from, date_to


def model_report(gw: Gateway, date_from: date | None = None, date_to: date | None = None) -> dict:
    """Requests, error rate and latency percentiles per model (the dashboard's table)."""
    _keystore(gw)  # no store, no usage
    date_from, date_to = _report_range(date_from, date_to)
    rows = model_stats.model_stats(gw.store, date_from, date_to)
    return {"date_from": date_from.isoformat(), "date_to": date_to.isoformat(), "rows": rows}


def usage_report(
    gw: Gateway,
    date_from: date | None = None,
    date_to: date | None = None,
    key_id: str | None = None,
    model: str | None = None,
) -> dict:
    _keystore(gw)  # no store, no usage
    date_from, date_to = _report_range(date_from, date_to)
    names = {k.id: k.name for k in gw.keyring.all()}
    if gw.keystore is not None:
        names.update(gw.keystore.names())
    rows = reports.usage_rows(gw.store, date_from, date_to, key_id=key_id, model=model, names=names)
    return {"date_from": date_from.isoformat(), "date_to": date_to.isoformat(), "rows": rows}

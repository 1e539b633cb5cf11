"""Admin API bodies and answers: keys and the usage report.

A key takes the fields of a key in the config file plus `expires_at` and `metadata`. Unknown
fields are refused (`Meta.unknown = RAISE`) and types are JSON types as sent, so a typo or a
`"rpm": "600"` is a 400 naming the field instead of a key with no limit.
"""

from __future__ import annotations

from datetime import UTC, date
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

from .. import jsonutil
from ..config import BUDGET_PERIODS
from .fields import (
    StrictBoolean,
    StrictInteger,
    StrictNumber,
    StrictString,
    one_of,
    printable,
    printable_json,
)

MAX_METADATA_BYTES = 4096


class _Strict(Schema):
    class Meta:
        unknown = RAISE


def _small_json(value: dict) -> None:
    if len(jsonutil.dumps(value)) > MAX_METADATA_BYTES:
        raise ValidationError(f"Must be at most {MAX_METADATA_BYTES} bytes of JSON.")


# Dates the store and its arithmetic (a day more, a period's end, a zone's offset) can hold:
# 9999-12-31 given as `to` overflowed `date + 1 day` into a 500.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9998, 12, 31)
OUT_OF_RANGE = f"Must be between {FIRST_DAY} and {LAST_DAY}."
DAY_RANGE = validate.Range(FIRST_DAY, LAST_DAY, error=OUT_OF_RANGE)


class IsoDateTime(fields.AwareDateTime):
    """An ISO 8601 date-time string; one without a zone is taken as UTC."""

    def __init__(self, **kwargs: Any):
        super().__init__(format="iso", default_timezone=UTC, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any):
        if not isinstance(value, str):
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        moment = super()._deserialize(value, attr, data, **kwargs)
        if not FIRST_DAY <= moment.date() <= LAST_DAY:
            raise ValidationError(OUT_OF_RANGE)
        return moment


class KeyUpdateSchema(_Strict):
    """Fields to change; `null` clears rpm, tpm, max_parallel, budget_usd and expires_at."""

    name = StrictString(validate=[validate.Length(min=1, max=128), printable])
    models = fields.List(
        StrictString(validate=validate.Length(min=1, max=128)),
        metadata={"description": 'Models the key may use; "*" for all; none: no model.'},
    )
    rpm = StrictInteger(allow_none=True, validate=validate.Range(min=1))
    tpm = StrictInteger(allow_none=True, validate=validate.Range(min=1))
    max_parallel = StrictInteger(
        allow_none=True,
        validate=validate.Range(min=1),
        metadata={
            "description": "Requests in flight at once (streams until they end); null: the "
            "config's limits.max_parallel_per_key (500)."
        },
    )
    budget_usd = StrictNumber(allow_none=True, validate=validate.Range(min=0))
    budget_period = StrictString(validate=one_of(*BUDGET_PERIODS))
    expires_at = IsoDateTime(
        allow_none=True, metadata={"description": "ISO 8601; without a zone, UTC."}
    )
    metadata = fields.Dict(
        keys=StrictString(validate=validate.Length(min=1, max=64)),
        validate=[_small_json, printable_json],
        metadata={"description": "Free-form labels, e.g. team and owner (printable text)."},
    )
    cache = StrictBoolean(
        metadata={
            "description": "Answer this key's repeated requests from the response cache "
            "(when the config has a `cache` section)."
        }
    )


class KeyCreateSchema(KeyUpdateSchema):
    """A new key: only `name` is required; no `models` means no model (default deny)."""

    name = StrictString(required=True, validate=[validate.Length(min=1, max=128), printable])

    @post_load
    def _defaults(self, data: dict, **_: Any) -> dict:
        return {"models": [], "budget_period": "monthly", "metadata": {}, "cache": False, **data}


class KeySchema(Schema):
    id = fields.String(metadata={"example": "key-3f9c2a1b7d4e6f80"})
    prefix = fields.String(metadata={"description": "The first 8 characters of the key."})
    name = fields.String()
    models = fields.List(fields.String())
    rpm = fields.Integer(allow_none=True)
    tpm = fields.Integer(allow_none=True)
    max_parallel = fields.Integer(allow_none=True)
    budget_usd = fields.Float(allow_none=True)
    budget_period = fields.String()
    expires_at = fields.DateTime(allow_none=True)
    metadata = fields.Dict()
    cache = fields.Boolean(metadata={"description": "Uses the response cache."})
    source = fields.String(
        metadata={"description": '"store" (admin API, CLI) or "config" (the file: read-only).'}
    )
    created_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    period_start = fields.String(
        metadata={"description": "Start (UTC day) of the current budget period."}
    )
    spend_usd = fields.Float(metadata={"description": "Settled spend in the current period."})
    reserved_usd = fields.Float(
        metadata={"description": "Held for requests in flight (released as they settle)."}
    )


class KeyCreatedSchema(KeySchema):
    key = fields.String(metadata={"description": "The plaintext key: shown this once only."})


class KeyListSchema(Schema):
    object = fields.String(metadata={"example": "list"})
    data = fields.List(fields.Nested(KeySchema))


class KeyListQuerySchema(_Strict):
    include_revoked = fields.Boolean(load_default=False)


class UsageQuerySchema(_Strict):
    date_from = fields.Date(
        data_key="from", validate=DAY_RANGE, metadata={"description": "First day (UTC)."}
    )
    date_to = fields.Date(
        data_key="to", validate=DAY_RANGE, metadata={"description": "Last day (UTC), included."}
    )
    key_id = StrictString()
    model = StrictString()


class UsageRowSchema(Schema):
    day = fields.String(metadata={"example": "2026-01-31"})
    key_id = fields.String()
    key_name = fields.String(allow_none=True)
    model = fields.String()
    requests = fields.Integer()
    input_tokens = fields.Integer(metadata={"description": "Every input token, cached or not."})
    cached_input_tokens = fields.Integer(
        metadata={"description": "Input tokens read from the provider's prompt cache."}
    )
    output_tokens = fields.Integer()
    cost_usd = fields.Float()
    cache_hits = fields.Integer(
        metadata={"description": "Of `requests`, those answered from the response cache (no cost)."}
    )


class UsageReportSchema(Schema):
    date_from = fields.String(data_key="from")
    date_to = fields.String(data_key="to")
    rows = fields.List(fields.Nested(UsageRowSchema))


class ModelStatsQuerySchema(_Strict):
    date_from = fields.Date(data_key="from", metadata={"description": "First day (UTC)."})
    date_to = fields.Date(data_key="to", metadata={"description": "Last day (UTC), included."})


class ModelStatsRowSchema(Schema):
    model = fields.String()
    requests = fields.Integer(metadata={"description": "Requests that reached an upstream."})
    errors = fields.Integer(metadata={"description": "Of those, how many failed (status >= 400)."})
    error_rate = fields.Float(metadata={"description": "errors / requests, 0..1."})
    latency_p50_s = fields.Float(allow_none=True, metadata={"description": "Successful only."})
    latency_p95_s = fields.Float(allow_none=True, metadata={"description": "Successful only."})
    ttft_p50_s = fields.Float(
        allow_none=True, metadata={"description": "Time to first token, successful only."}
    )
    cache_hits = fields.Integer(
        metadata={"description": "Of `requests`, those answered from the response cache."}
    )
    cache_hit_rate = fields.Float(
        metadata={"description": "cache_hits / requests, 0..1 (the latencies leave hits out)."}
    )


class ModelStatsReportSchema(Schema):
    date_from = fields.String(data_key="from")
    date_to = fields.String(data_key="to")
    rows = fields.List(fields.Nested(ModelStatsRowSchema))

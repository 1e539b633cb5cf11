"""`facade keys ...` (and `flask --app wsgi keys ...`): key administration without the API.

Values go through the admin API's own schema, so the CLI and the API accept and refuse the
same things. The plaintext of a created or rotated key is printed once, on stdout only.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from marshmallow import ValidationError

from . import jsonutil, key_admin
from .config import BUDGET_PERIODS
from .errors import FacadeError
from .schemas.admin_bodies import KeyCreateSchema, KeyUpdateSchema
from .schemas.fields import escape_unprintable
from .settings import describe_store
from .validation import flatten_errors

keys_cli = AppGroup("keys", help="Create, list, update, rotate and revoke API keys.")


CLEAR = object()  # `none` given on the command line: clear the field


class _Maybe(click.ParamType):
    """A number, or `none` to clear the limit (update only)."""

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.name = f"{kind.__name__}|none"

    def convert(self, value, param, ctx):
        if value is None or value is CLEAR or isinstance(value, self.kind):
            return value
        if str(value).lower() == "none":
            return CLEAR
        try:
            return self.kind(value)
        except ValueError:
            self.fail(f"{value!r} is not a {self.kind.__name__} or 'none'", param, ctx)


def _options(create: bool):
    """The key's fields as options; on update, every one is optional and may be 'none'."""
    number, real = (int, float) if create else (_Maybe(int), _Maybe(float))
    specs = [
        click.option("--name", required=create, help="A name for people."),
        click.option(
            "--models",
            multiple=True,
            help="Models the key may use, comma-separated or repeated; '*' for all.",
        ),
        click.option("--rpm", type=number, help="Requests per minute."),
        click.option("--tpm", type=number, help="Tokens per minute."),
        click.option(
            "--max-parallel",
            type=number,
            help="Requests in flight at once (default: limits.max_parallel_per_key).",
        ),
        click.option("--budget-usd", type=real, help="Budget per period, in USD."),
        click.option(
            "--budget-period", type=click.Choice(BUDGET_PERIODS), help="Default: monthly."
        ),
        click.option("--expires-at", help="ISO 8601 date-time (UTC unless it says otherwise)."),
        click.option("--metadata", multiple=True, help="KEY=VALUE labels, e.g. team=search."),
        click.option(
            "--cache/--no-cache",
            default=None,
            help="Answer the key's repeated requests from the response cache.",
        ),
    ]

    def apply(func):
        for spec in reversed(specs):
            func = spec(func)
        return func

    return apply


def _fields(given: dict, schema) -> dict:
    raw: dict = {}
    for name, value in given.items():
        if name == "models" and value:
            raw["models"] = [m.strip() for v in value for m in v.split(",") if m.strip()]
        elif name == "metadata" and value:
            pairs = [item.partition("=") for item in value]
            if any(not sep for _, sep, _ in pairs):
                raise click.UsageError("--metadata takes KEY=VALUE")
            raw["metadata"] = {k: v for k, _, v in pairs}
        elif value is CLEAR or (name == "expires_at" and str(value).lower() == "none"):
            raw[name] = None
        elif value is not None and name not in ("models", "metadata"):
            raw[name] = value
    try:
        return schema.load(raw)
    except ValidationError as err:
        param, message = flatten_errors(err.messages)[0]
        raise click.UsageError(escape_unprintable(f"{param}: {message}")) from None


def _echo(text: str, err: bool = False) -> None:
    """Print a line with every control character escaped: a key name or label is never
    written raw to a terminal (an escape sequence would run, a newline would forge a line)."""
    click.echo(escape_unprintable(text), err=err)


def _gateway():
    return current_app.extensions["facade"]


def _run(action):
    try:
        return action()
    except FacadeError as err:
        raise click.ClickException(escape_unprintable(err.message)) from None


def usd(amount: float) -> str:
    """Dollars as people read them: cents from $1 up, else six decimals ($0.000070)."""
    return f"${amount:,.2f}" if abs(amount) >= 1 or amount == 0 else f"${amount:.6f}"


def budget_usd(amount: float) -> str:
    """A budget as it was set: $100, $2.50, $0.0004 (never an exponent)."""
    text = f"{amount:,.6f}".rstrip("0").rstrip(".")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}" if cents else f"${whole}"


def _show(view: dict) -> str:
    limits = ", ".join(
        f"{name} {view[name]}"
        for name in ("rpm", "tpm", "max_parallel")
        if view.get(name) is not None
    )
    budget = view.get("budget_usd")
    spend = usd(view["spend_usd"])
    if budget is not None:
        spend += f" of {budget_usd(budget)} {view['budget_period']}"
    expires = view["expires_at"].isoformat() if view.get("expires_at") else "never"
    return (
        f"{view['id']}  {view['prefix']}…  {view['name']}  [{view['source']}]  "
        f"models: {','.join(view['models']) or '(none)'}  limits: {limits or 'none'}  "
        f"spend: {spend}  expires: {expires}" + ("  cache: on" if view.get("cache") else "")
    )


@keys_cli.command("create")
@_options(create=True)
def create(**given) -> None:
    """Create a key and print its plaintext (shown this once)."""
    fields = _fields(given, KeyCreateSchema())
    view, plaintext = _run(lambda: key_admin.create_key(_gateway(), fields))
    _echo(_show(view))
    _echo(f"key (shown once, store it now): {plaintext}")


@keys_cli.command("list")
@click.option("--include-revoked", is_flag=True, help="Show revoked keys too.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key.")
def list_(include_revoked: bool, as_json: bool) -> None:
    """List keys from the config file and the store, with their spend this period."""
    where = f"store: {describe_store(_gateway().settings.database_url)}"
    _echo(where, err=as_json)  # --json keeps stdout to one JSON object a line
    for view in _run(lambda: key_admin.list_keys(_gateway(), include_revoked)):
        if as_json:
            _echo(jsonutil.dumps(view).decode())
        else:
            _echo(_show(view))


@keys_cli.command("update")
@click.argument("key_id")
@_options(create=False)
def update(key_id: str, **given) -> None:
    """Change a key's fields; 'none' clears rpm, tpm, max-parallel, budget or expiry."""
    changes = _fields(given, KeyUpdateSchema())
    _echo(_show(_run(lambda: key_admin.update_key(_gateway(), key_id, changes))))


@keys_cli.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke a key: refused at once everywhere."""
    view = _run(lambda: key_admin.revoke_key(_gateway(), key_id))
    _echo(f"revoked {view['id']} ({view['name']})")


@keys_cli.command("rotate")
@click.argument("key_id")
def rotate(key_id: str) -> None:
    """Give a key a new plaintext (printed once); the old one stops working."""
    view, plaintext = _run(lambda: key_admin.rotate_key(_gateway(), key_id))
    _echo(_show(view))
    _echo(f"new key (shown once, store it now): {plaintext}")

"""The `facade` command (installed by `pip install .`): serve, keys, check-config.

`facade serve` runs gunicorn with `facade/gunicorn_conf.py`, the settings `make run` uses.
`facade keys ...` are the key commands of `facade/cli.py` (the admin API's checks) on the
store the server uses, found the same way from any directory (`settings.default_store_path`).
Problems a person can fix print one line and exit 3, as at server start-up.
"""

from __future__ import annotations

import os
import sys

import click

from .config import ConfigError, load_config
from .settings import Settings, SettingsError

EXIT_BAD_INPUT = 3  # as gunicorn's master uses for a bad config or environment


def _fail(message: str) -> None:
    click.echo(f"facade: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _settings(**overrides: object) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except SettingsError as err:
        _fail(f"invalid environment: {err}")
        raise AssertionError("unreachable") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="facade")
def main() -> None:
    """Facade: an enterprise gateway in front of large language models."""


@main.command()
@click.option("--config", "config_path", help="The YAML config (sets FACADE_CONFIG).")
@click.option("--bind", help="HOST:PORT to listen on (sets FACADE_BIND; default 0.0.0.0:8000).")
@click.option("--workers", type=int, help="Worker processes (sets FACADE_WORKERS).")
def serve(config_path: str | None, bind: str | None, workers: int | None) -> None:
    """Serve with gunicorn and gevent workers, as `make run` does."""
    for name, value in (
        ("FACADE_CONFIG", config_path and os.path.abspath(config_path)),
        ("FACADE_BIND", bind),
        ("FACADE_WORKERS", workers),
    ):
        if value is not None:
            os.environ[name] = str(value)
    _settings()  # fail here, in one line, before gunicorn starts (it logs the store's place)
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:facade.gunicorn_conf",
        "facade:create_app()",
    ]
    os.execv(sys.executable, argv)  # gunicorn becomes this process: signals reach it directly


@main.command("check-config")
@click.argument("path", type=click.Path(dir_okay=False))
def check_config(path: str) -> None:
    """Validate a config file: exit 0, or exit 3 naming the bad key."""
    try:
        config = load_config(_settings(config_path=path))
    except ConfigError as err:
        _fail(str(err))
        return
    click.echo(
        f"{path}: ok ({len(config.providers)} providers, {len(config.models)} models, "
        f"{len(config.keys)} keys)"
    )


@main.group()
@click.pass_context
def keys(ctx: click.Context) -> None:
    """Create, list, update, rotate and revoke API keys (as the admin API does)."""
    from . import create_app

    settings = _settings(log_level="WARNING")  # no start-up chatter on a command line
    try:
        app = create_app(settings=settings, quiet=True)
    except ConfigError as err:
        _fail(f"invalid configuration: {err}")
        return
    except ValueError as err:  # the store's URL (facade.store.db.StoreConfigError)
        _fail(str(err))
        return
    ctx.call_on_close(app.facade_close)
    ctx.with_resource(app.app_context())


def _add_key_commands() -> None:
    from .cli import keys_cli

    for command in keys_cli.commands.values():
        keys.add_command(command)


_add_key_commands()

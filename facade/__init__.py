"""Facade: an enterprise gateway in front of large language models."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from .config import Config
    from .settings import Settings


def create_app(
    config: Config | None = None, settings: Settings | None = None, *, quiet: bool = False
) -> Flask:
    """Build the WSGI app. Imports stay inside so `facade.config` can load in gunicorn's
    master without pulling in `requests` before the gevent worker patches. `quiet`: no demo
    banner (the `facade` command's key administration)."""
    from .app import build_app

    return build_app(config, settings, quiet=quiet)

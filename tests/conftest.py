"""Fixtures: a live fake upstream process, the app over it, and Flask's test client."""

from __future__ import annotations

import os

import pytest

from facade import create_app
from facade.config import parse_config
from facade.settings import Settings
from tests.support import TEAM_KEY, Fake, base_config, upstream_env


@pytest.fixture(scope="session")
def fake_upstream():
    fake = Fake()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_upstream):
    fake_upstream.reset()
    return fake_upstream


@pytest.fixture
def config_dict(fake):
    return base_config(fake.url)


@pytest.fixture
def settings(tmp_path):
    return Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/facade.db")


@pytest.fixture
def app(config_dict, settings):
    config = parse_config(config_dict, environ={**os.environ, **upstream_env()})
    app = create_app(config, settings)
    yield app
    app.facade_close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth():
    return {"Authorization": f"Bearer {TEAM_KEY}"}

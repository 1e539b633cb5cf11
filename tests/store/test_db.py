"""Engines and migrations: URL forms, SQLite's pragmas, start-up races."""

from __future__ import annotations

import threading
from contextlib import nullcontext

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from facade.store import Store
from facade.store.db import StoreConfigError, make_engine, normalize_url
from facade.store.migrations import LATEST, MIGRATIONS, migrate
from tests.support import pg_database


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///var/facade.db", "sqlite:///var/facade.db"),
    ],
)
def test_usual_urls_name_the_installed_driver(given, used):
    assert normalize_url(given) == used


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "mysql://u@h/db"])
def test_unusable_urls_are_refused_naming_the_variable(url):
    with pytest.raises(StoreConfigError, match="FACADE_DATABASE_URL"):
        make_engine(url)


def test_sqlite_file_gets_its_directory_wal_and_normal_sync(sqlite_url, tmp_path):
    store = Store(sqlite_url)
    try:
        assert (tmp_path / "store" / "facade.db").exists()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        store.close()


def test_migrations_race_safely_and_run_once(store_url):
    engine = make_engine(store_url)
    errors: list[BaseException] = []
    found: list[int] = []
    start = threading.Barrier(6)

    def boot() -> None:
        start.wait()
        try:
            found.append(migrate(engine))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=boot) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert sorted(found)[-1] == LATEST and found.count(LATEST) >= 5
        assert migrate(engine) == LATEST
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version FROM schema_version")).all() == [(LATEST,)]
            for table in ("api_keys", "budget_ledger", "budget_holds", "usage_records"):
                conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
    finally:
        with engine.connect() as conn, conn.begin():  # leave the session database empty
            if conn.dialect.name == "postgresql":
                for table in ("api_keys", "budget_ledger", "budget_holds", "usage_records"):
                    conn.execute(text(f"TRUNCATE {table}"))
        engine.dispose()


def test_a_newer_schema_stops_start_up(sqlite_url):
    Store(sqlite_url).close()
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(text(f"UPDATE schema_version SET version = {LATEST + 1}"))
        with pytest.raises(RuntimeError, match="newer than this Facade"):
            migrate(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_version_8_database_upgrades_and_loses_its_rate_slots(dialect, tmp_path):
    """Made the way Facade 8 made it, with data in it; the rates now live outside the store."""
    with pg_database() if dialect == "postgresql" else nullcontext(None) as pg_url:
        url = pg_url or f"sqlite:///{tmp_path}/old.db"
        engine = make_engine(url)
        try:
            with engine.connect() as conn, conn.begin():
                conn.execute(text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
                for version, step in MIGRATIONS:
                    if version <= 8:
                        step(conn)
                conn.execute(text("INSERT INTO schema_version (version) VALUES (8)"))
                conn.execute(text("INSERT INTO rate_slots VALUES ('key-1', 1000, 3, 30)"))
                conn.execute(text("INSERT INTO budget_ledger VALUES ('key-1', 'total', 7, 0)"))
            assert migrate(engine) == 8
            with engine.connect() as conn:
                assert conn.execute(text("SELECT version FROM schema_version")).all() == [(LATEST,)]
                assert conn.execute(text("SELECT spent_nusd FROM budget_ledger")).all() == [(7,)]
                with pytest.raises(DBAPIError, match="rate_slots"):
                    conn.execute(text("SELECT * FROM rate_slots"))
            assert migrate(engine) == LATEST
        finally:
            engine.dispose()

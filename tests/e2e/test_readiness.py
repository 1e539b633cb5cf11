"""/readyz follows the store and Redis: 503 while unreachable, 200 again when back, no restart.

gunicorn reaches PostgreSQL and Redis through TCP proxies this test controls, so "stopping
the store" cuts only this instance's path to it and leaves the shared servers alone.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from tests.support import (
    PG_TEST_URL,
    REDIS_TEST_URL,
    base_config,
    free_port,
    pg_database,
    redis_namespace,
    start_gunicorn,
)


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; `stop()` refuses and cuts, `start()` resumes."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            # close() alone leaves a socket that a thread is accept()ing on listening
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _host_port(url: str) -> tuple[str, int]:
    netloc = url.split("//", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = netloc.partition(":")
    return host, int(port or 0)


def wait_status(url: str, status: int, within: float) -> float:
    started = time.monotonic()
    last = None
    while time.monotonic() - started < within:
        try:
            last = requests.get(url, timeout=2).status_code
        except requests.RequestException as err:
            last = repr(err)
        if last == status:
            return time.monotonic() - started
        time.sleep(0.1)
    pytest.fail(f"/readyz stayed {last}, expected {status} within {within} s")


def test_readyz_follows_postgresql_and_redis(tmp_path, fake_upstream):
    pg_proxy = TcpProxy(_host_port(PG_TEST_URL))
    redis_proxy = TcpProxy(_host_port(REDIS_TEST_URL))
    pg_proxy.start()
    redis_proxy.start()
    with pg_database() as db_url, redis_namespace() as (_, prefix):
        name = db_url.rsplit("/", 1)[1]
        env = {
            "FACADE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg_proxy.port}/{name}",
            "FACADE_REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/0",
            "FACADE_REDIS_PREFIX": prefix,
        }
        server = start_gunicorn(tmp_path, base_config(fake_upstream.url), env=env)
        ready = f"{server.url}/readyz"
        try:
            wait_status(ready, 200, 10)
            for proxy in (pg_proxy, redis_proxy):
                proxy.stop()
                wait_status(ready, 503, 15)
                assert requests.get(f"{server.url}/healthz", timeout=2).status_code == 200
                proxy.start()
                wait_status(ready, 200, 15)
            assert server.proc.poll() is None, "recovered without a restart"
        finally:
            server.stop()
            pg_proxy.stop()
            redis_proxy.stop()

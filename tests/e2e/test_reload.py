"""SIGHUP through gunicorn: a valid config takes effect with a stream and requests in flight;
an invalid one is logged naming the key and the running config keeps serving."""

from __future__ import annotations

import json
import signal
import threading
import time

import requests
import yaml

from tests.support import TEAM_KEY, base_config, chat_body, start_gunicorn

AUTH = {"Authorization": f"Bearer {TEAM_KEY}", "Connection": "close"}


def config_with_slow_stream(fake_url: str) -> dict:
    config = base_config(fake_url)
    config["providers"].append(
        {"name": "slow", "kind": "simulator", "ttft_s": 0.2, "tokens_per_s": 8}
    )
    config["models"].append({"name": "slow-sim", "targets": [{"provider": "slow", "model": "s"}]})
    return config


def post(url: str, body: dict, **kw) -> requests.Response:
    with requests.Session() as s:
        s.trust_env = False
        return s.post(f"{url}/api/v1/chat/completions", json=body, headers=AUTH, **kw)


def status_of(url: str, model: str) -> int:
    return post(url, chat_body("hi", model), timeout=20).status_code


def hup_and_wait(server, marker: str, count: int, timeout: float = 30) -> None:
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while server.log().count(marker) < count:
        assert time.monotonic() < deadline, server.log()
        assert server.proc.poll() is None, server.log()
        time.sleep(0.05)


def test_sighup_reloads_a_valid_config_without_dropping_anything(tmp_path, fake_upstream):
    config = config_with_slow_stream(fake_upstream.url)
    server = start_gunicorn(tmp_path, config, workers=2)
    path = next(tmp_path.glob("facade-*.yaml"))
    try:
        assert status_of(server.url, "new-model") == 404

        # A stream of about 4 s, opened before the reload.
        events: list[bytes] = []
        opened = threading.Event()

        def stream() -> None:
            body = chat_body("tell me", "slow-sim", stream=True, max_tokens=40)
            body["stream_options"] = {"include_usage": True}
            resp = post(server.url, body, stream=True, timeout=30)
            try:
                for block in resp.iter_lines(delimiter=b"\n\n"):
                    if block:
                        events.append(block)
                        opened.set()
            finally:
                resp.close()

        # Plain requests, one connection each, before, during and after the reload.
        statuses: list[int] = []
        stop = threading.Event()

        def traffic() -> None:
            while not stop.is_set():
                statuses.append(status_of(server.url, "gpt-test"))

        streamer = threading.Thread(target=stream)
        streamer.start()
        assert opened.wait(10), "the stream did not start"
        sender = threading.Thread(target=traffic)
        sender.start()

        config["models"].append(
            {"name": "new-model", "targets": [{"provider": "sim", "model": "sim"}]}
        )
        path.write_text(yaml.safe_dump(config))
        hup_and_wait(server, "replacing workers gracefully", 1)

        deadline = time.monotonic() + 30
        while status_of(server.url, "new-model") != 200:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.2)
        streamer.join(30)
        stop.set()
        sender.join(30)

        assert statuses and set(statuses) == {200}, statuses
        assert events[-1] == b"data: [DONE]", events[-3:]
        chunks = [json.loads(e.removeprefix(b"data: ")) for e in events[:-1]]
        assert all(c["success"] for c in chunks), "no error event: the stream ran to its end"
        text = "".join(
            choice["delta"].get("content") or ""
            for c in chunks
            for choice in c["data"]["choices"]
        )
        usage = chunks[-1]["data"]["usage"]
        assert usage["completion_tokens"] >= 20 and text.endswith(".")
        assert server.stop() == 0
    finally:
        server.stop()


def test_sighup_with_an_invalid_config_keeps_the_running_one(tmp_path, fake_upstream):
    config = config_with_slow_stream(fake_upstream.url)
    server = start_gunicorn(tmp_path, config, workers=2)
    path = next(tmp_path.glob("facade-*.yaml"))
    try:
        booted = server.log().count("Booting worker")
        broken = json.loads(json.dumps(config))
        broken["models"][0]["targets"][0]["provider"] = "nowhere"
        path.write_text(yaml.safe_dump(broken))
        hup_and_wait(server, "config reload refused", 1)
        assert "models[0].targets[0].provider: unknown provider 'nowhere'" in server.log()

        path.write_text("providers: [unclosed")
        hup_and_wait(server, "config reload refused", 2)
        time.sleep(1)
        assert server.proc.poll() is None, "the master must survive a bad file"
        assert server.log().count("Booting worker") == booted, "no worker was replaced"
        assert [status_of(server.url, "gpt-test") for _ in range(6)] == [200] * 6
        assert status_of(server.url, "slow-sim") == 200
    finally:
        assert server.stop() == 0

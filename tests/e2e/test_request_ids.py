"""Two tenants sending the same X-Request-ID: two usage rows, each under the server's own id."""

from __future__ import annotations

import json
import time

import requests
from sqlalchemy import text

from facade.store.db import make_engine
from tests.support import OTHER_KEY, TEAM_KEY, base_config, chat_body, start_gunicorn

CHAT = "/api/v1/chat/completions"


def test_the_same_caller_id_from_two_tenants_gives_two_rows(fake_upstream, tmp_path):
    srv = start_gunicorn(tmp_path, base_config(fake_upstream.url))
    try:
        for key in (TEAM_KEY, OTHER_KEY):
            resp = requests.post(
                f"{srv.url}{CHAT}",
                json=chat_body("hi [[fake tokens=3]]"),
                headers={"Authorization": f"Bearer {key}", "X-Request-ID": "shared-7"},
                timeout=10,
            )
            assert resp.status_code == 200
            assert resp.headers["X-Request-ID"] == "shared-7"  # the caller's, echoed
        engine = make_engine(f"sqlite:///{tmp_path}/facade.db")
        rows = []
        deadline = time.monotonic() + 10
        while len(rows) < 2 and time.monotonic() < deadline:
            with engine.connect() as conn:
                rows = conn.execute(
                    text("SELECT server_request_id, request_id, key_id FROM usage_records")
                ).all()
            time.sleep(0.1)
        engine.dispose()
    finally:
        assert srv.stop() == 0
    assert len(rows) == 2
    assert {r[1] for r in rows} == {"shared-7"}
    assert len({r[0] for r in rows}) == 2 and "shared-7" not in {r[0] for r in rows}
    assert len({r[2] for r in rows}) == 2
    lines = [
        json.loads(line)
        for line in srv.log().splitlines()
        if line.startswith("{") and '"facade.access"' in line
    ]
    mine = [r for r in lines if r.get("client_request_id") == "shared-7"]
    assert len(mine) == 2 and {r["request_id"] for r in mine} == {"shared-7"}
    assert {r["server_request_id"] for r in mine} == {r[0] for r in rows}

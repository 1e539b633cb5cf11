"""Pages in a real headless Chromium with no network: /docs, /dashboard, and `/`."""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine

from facade.store.schema import usage_records
from tests.browser import browser
from tests.support import (
    ADMIN_KEY,
    ROOT,
    TEAM_KEY,
    admin_headers,
    base_config,
    chat_body,
    start_gunicorn,
)

SCREENSHOT = ROOT / "docs" / "dashboard.png"


@pytest.fixture(scope="module")
def server(fake_upstream, tmp_path_factory):
    config = base_config(fake_upstream.url)
    config["models"].append(
        {"name": "flaky", "targets": [{"provider": "fake", "model": "down+status=500"}]}
    )
    config["routing"]["failures_to_cool"] = 1000
    tmp = tmp_path_factory.mktemp("pages")
    srv = start_gunicorn(
        tmp,
        config,
        workers=2,
        env={"FACADE_ADMIN_KEY": ADMIN_KEY, "FACADE_USAGE_FLUSH_S": "0.05"},
    )
    srv.db = tmp / "facade.db"
    yield srv
    srv.stop()


def _post(url: str, key: str, body: dict) -> requests.Response:
    with requests.Session() as s:
        s.trust_env = False
        return s.post(
            f"{url}/api/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=20,
        )


def _admin(url: str, method: str, path: str, **kw) -> dict:
    resp = requests.request(
        method, f"{url}/api/v1/admin{path}", headers=admin_headers(), timeout=10, **kw
    )
    assert resp.ok, resp.text
    return resp.json()["data"]


@pytest.fixture(scope="module")
def seeded(server):
    """Keys with budgets near and far from their limit, and traffic on three models."""
    near = _admin(server.url, "POST", "/keys", json=_key("search-team", 0.0008))
    far = _admin(server.url, "POST", "/keys", json=_key("support-bot", 5))
    # Spend the first key up to its budget: requests until the budget refuses one (each holds
    # its admission bound until the batched settlement, so how many fit depends on that
    # bound, not on this test).
    served = 0
    for _ in range(60):
        resp = _post(server.url, near["key"], chat_body("hi", max_tokens=20))
        if resp.status_code == 429:
            assert "budget" in resp.json()["message"]
            break
        assert resp.status_code == 200, resp.text
        served += 1
    assert served >= 2, "the budget admits a few requests before it refuses"
    for _ in range(3):
        assert _post(server.url, far["key"], chat_body("hello", max_tokens=10)).status_code == 200
        assert _post(server.url, TEAM_KEY, chat_body("sim", "sim-model")).status_code == 200
    for _ in range(2):
        assert _post(server.url, TEAM_KEY, chat_body("x", "flaky")).status_code == 502
    # Usage is written in batches: wait until every request that reached an upstream has
    # its row (the budget's refusal did not).
    for _ in range(100):
        rows = _admin(server.url, "GET", "/usage")["rows"]
        if sum(r["requests"] for r in rows) == served + 8:
            break
        time.sleep(0.1)
    _history(server.db, [near["id"], far["id"], "cfg-history-only"])
    return {"near": near, "far": far}


def _history(db: Path, key_ids: list[str]) -> None:
    """Usage rows for the 29 days before today, written to the store's file as workers would
    write them, so the chart has a month to draw."""
    engine = create_engine(f"sqlite:///{db}")
    today = datetime.now(UTC).date()
    rows = []
    for back in range(1, 30):
        day = today - timedelta(days=back)
        ts = datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()
        for i, key_id in enumerate(key_ids):
            n = (back * (i + 3)) % 7 + 1
            rows.append(
                {
                    "ts": ts,
                    "day": day.isoformat(),
                    "key_id": key_id,
                    "model": "gpt-test",
                    "provider": "fake",
                    "upstream_model": "up-model",
                    "input_tokens": 1000 * n,
                    "output_tokens": 400 * n,
                    "cost_nusd": n * (3 - i) * 900_000,
                    "latency_s": 0.4 + 0.05 * n,
                    "status": 200,
                    "request_id": f"seed-{back}-{i}",
                    "ttft_s": 0.1 + 0.01 * n,
                }
            )
    with engine.begin() as conn:
        conn.execute(usage_records.insert(), rows)
    engine.dispose()


def _key(name: str, budget_usd: float) -> dict:
    return {"name": name, "models": ["*"], "budget_usd": budget_usd}


def _login(b, url: str, key: str, state: str) -> None:
    b.page.goto(f"{url}/dashboard")
    b.page.fill("#key-input", key)
    b.page.click("#login-form button[type=submit]")
    b.page.wait_for_selector(f"body[data-state={state}]")


def test_dashboard_shows_the_admin_api_numbers(server, seeded, tmp_path):
    keys = {k["id"]: k for k in _admin(server.url, "GET", "/keys")["data"]}
    usage = _admin(server.url, "GET", "/usage")["rows"]
    models = {m["model"]: m for m in _admin(server.url, "GET", "/usage/models")["rows"]}
    with browser(server.url) as b:
        _login(b, server.url, ADMIN_KEY, "loaded")
        page = b.page

        # Budgets: every key with a budget, the one nearest its limit first, spend as the API.
        bars = page.eval_on_selector_all(
            "#budgets .bar",
            "els => els.map(e => [e.dataset.keyId, Number(e.dataset.spendUsd)])",
        )
        budgeted = [k for k in keys.values() if k["budget_usd"] is not None]
        assert [kid for kid, _ in bars][:2] == [seeded["near"]["id"], seeded["far"]["id"]]
        assert len(bars) == len(budgeted)
        for kid, spend in bars:
            assert math.isclose(spend, keys[kid]["spend_usd"], rel_tol=1e-9)
        assert "search-team" in page.inner_text("#budgets")

        # Spend per key per day: each bar segment is the usage API's sum for that day and key.
        per_cell: dict[tuple[str, str], float] = defaultdict(float)
        for r in usage:
            per_cell[(r["day"], r["key_id"])] += r["cost_usd"]
        drawn = page.eval_on_selector_all(
            "#spend-chart rect[data-day]",
            "els => els.map(e => [e.dataset.day, e.dataset.keyId, Number(e.dataset.costUsd)])",
        )
        assert drawn, "the chart draws the seeded spend"
        expected = {cell: cost for cell, cost in per_cell.items() if cost > 0}
        assert {(d, k): c for d, k, c in drawn} == pytest.approx(expected, rel=1e-9)

        # Models: requests and error rate as the API reports them.
        rows = page.eval_on_selector_all(
            "#models tbody tr[data-model]",
            "els => els.map(e => [e.dataset.model,"
            " e.querySelector('[data-field=requests]').textContent,"
            " e.querySelector('[data-field=error_rate]').textContent])",
        )
        assert {m for m, _, _ in rows} == set(models) >= {"gpt-test", "sim-model", "flaky"}
        for model, requests_text, rate_text in rows:
            assert int(requests_text) == models[model]["requests"]
            assert rate_text == f"{models[model]['error_rate'] * 100:.1f}%"
        assert models["flaky"]["error_rate"] == 1.0 and models["gpt-test"]["error_rate"] == 0
        per_model = defaultdict(int)
        for r in usage:
            per_model[r["model"]] += r["requests"]
        assert {m: v["requests"] for m, v in models.items()} == per_model

        # The key lives in this tab only: sessionStorage, no cookie, no localStorage.
        assert page.evaluate("sessionStorage.getItem('facade.adminKey')") == ADMIN_KEY
        assert page.evaluate("document.cookie") == ""
        assert page.evaluate("localStorage.length") == 0
        assert b.outside == [] and b.console == []

        # The README's picture is refreshed on request only (`make screenshot`), so a test
        # run never changes a tracked file.
        shot = SCREENSHOT if os.environ.get("FACADE_UPDATE_SCREENSHOT") else tmp_path / "d.png"
        shot.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dashboard_refuses_a_wrong_key(server):
    with browser(server.url) as b:
        _login(b, server.url, "adm-wrong-key-0000", "refused")
        assert "refused" in b.page.inner_text("#login-error")
        assert not b.page.is_visible("#content")
        assert b.page.evaluate("sessionStorage.getItem('facade.adminKey')") is None
        assert b.outside == []


def test_docs_render_offline_with_a_strict_policy(server):
    resp = requests.get(f"{server.url}/docs", timeout=10)
    policy = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "http://" not in resp.text and "https://" not in resp.text
    with browser(server.url) as b:
        b.page.goto(f"{server.url}/docs")
        b.page.wait_for_selector(".opblock", timeout=30_000)
        operations = b.page.locator(".opblock").count()
        assert operations >= 10
        assert "/api/v1/chat/completions" in b.page.inner_text("#swagger-ui")
        assert b.outside == [], "the docs page reached outside the server"
        assert [m for m in b.console if "Content Security Policy" in m] == []


def test_index_points_at_docs_dashboard_and_probes(server):
    data = requests.get(f"{server.url}/", timeout=10).json()
    assert {data["docs"], data["dashboard"], data["health"], data["ready"]} == {
        "/docs",
        "/dashboard",
        "/healthz",
        "/readyz",
    }
    with browser(server.url) as b:
        b.page.goto(f"{server.url}/")
        b.page.click("text=API docs")
        b.page.wait_for_selector(".opblock")
        assert b.outside == []


def test_screenshot_is_shown_in_the_readme():
    assert "docs/dashboard.png" in Path(ROOT / "README.md").read_text()

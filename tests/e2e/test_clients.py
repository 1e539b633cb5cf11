"""The README's client snippets (examples/clients/), run as users run them, against gunicorn.

Each reads the enveloped SSE stream of POST /api/v1/chat/completions and prints the text; the
fake upstream sends multi-byte characters and U+2028 cut at awkward byte boundaries, which
naive line splitting or decoding gets wrong.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.support import ROOT, TEAM_KEY, UPSTREAM_SECRET, base_config, start_gunicorn

EXAMPLES = ROOT / "examples" / "clients"
UNICODE_TEXT = "héllo wörld 日本語 emoji😀 line\u2028sep end"


def node() -> str:
    path = shutil.which("node")
    # Not a skip: the Node snippet is shown to users and must be proven to work.
    assert path, "node (>= 18) is required to test examples/clients/node_fetch.mjs"
    return path


CLIENTS = {
    "python_requests": lambda: [sys.executable, str(EXAMPLES / "python_requests.py")],
    "node_fetch": lambda: [node(), str(EXAMPLES / "node_fetch.mjs")],
}


@pytest.fixture(scope="module")
def server(fake_upstream, tmp_path_factory):
    srv = start_gunicorn(tmp_path_factory.mktemp("clients"), base_config(fake_upstream.url))
    yield srv
    assert srv.stop() == 0
    assert UPSTREAM_SECRET not in srv.log() and TEAM_KEY not in srv.log()


def invoke(client: str, server, *args: str, key: str = TEAM_KEY):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy") and not k.startswith("FACADE_")
    }
    env.update(FACADE_URL=server.url, FACADE_API_KEY=key, PYTHONIOENCODING="utf-8")
    proc = subprocess.run(
        [*CLIENTS[client](), *args], env=env, capture_output=True, timeout=30, cwd=ROOT
    )
    return proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")


@pytest.mark.parametrize("client", CLIENTS)
def test_prints_unicode_text_exactly(client, server):
    code, out, err = invoke(client, server, "say it [[fake unicode tokens=6 split]]", "gpt-test")
    assert code == 0, err
    assert out == UNICODE_TEXT + "\n"
    metrics = json.loads(err.strip().splitlines()[-1])
    assert metrics["output_tokens"] == 6
    assert metrics["input_tokens"] == 6  # the fake counts prompt words
    assert metrics["provider"] == "fake"


@pytest.mark.parametrize("client", CLIENTS)
def test_prints_a_slow_dripping_stream(client, server):
    code, out, err = invoke(client, server, "[[fake tokens=5 drip=0.02 crlf]]", "gpt-test")
    assert code == 0, err
    assert out == "tok0 tok1 tok2 tok3 tok4\n"
    assert json.loads(err.strip().splitlines()[-1])["output_tokens"] == 5


@pytest.mark.parametrize("client", CLIENTS)
def test_error_before_the_stream(client, server):
    code, out, err = invoke(client, server, "x", "no-such-model")
    assert code == 1
    assert out == ""
    assert err.startswith("error 404: ")


@pytest.mark.parametrize("client", CLIENTS)
def test_bad_key(client, server):
    code, _, err = invoke(client, server, "x", "gpt-test", key="sk-wrong")
    assert code == 1
    assert err.startswith("error 401: ")


@pytest.mark.parametrize("client", CLIENTS)
def test_error_mid_stream(client, server):
    code, out, err = invoke(client, server, "[[fake tokens=6 midstream=3]]", "gpt-test")
    assert code == 1
    assert out == "tok0 tok1 \n"
    assert err.startswith("error 502: ")

"""The bare stack `make bench` measures Facade against: Flask + gunicorn gevent + requests.

A pass-through with none of Facade's work (auth, validation, limits, metering, envelope),
built as leanly as the stack allows: one Session, `trust_env` off, a pool sized to the
worker's connections. Served by `gunicorn -k gevent bench.bare:app` with BARE_UPSTREAM set.
"""

from __future__ import annotations

import os

import requests
from flask import Flask, Response, request

UPSTREAM = os.environ.get("BARE_UPSTREAM", "http://127.0.0.1:9000/v1") + "/chat/completions"
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-up-bench"}

app = Flask(__name__)
session = requests.Session()
session.trust_env = False
session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1000))


@app.post("/v1/chat/completions")
def chat() -> Response:
    body = request.get_data()
    stream = b'"stream":true' in body
    upstream = session.post(UPSTREAM, data=body, headers=HEADERS, stream=stream, timeout=(5, 120))
    if not stream:
        return Response(upstream.content, upstream.status_code, content_type="application/json")

    def relay():
        try:
            yield from upstream.iter_content(chunk_size=None)
        finally:
            upstream.close()

    return Response(relay(), upstream.status_code, content_type="text/event-stream")

"""Stream a chat completion from Facade with `requests` and print the text as it arrives.

    FACADE_URL=http://localhost:8000 FACADE_API_KEY=sk-demo \
        python examples/clients/python_requests.py "Write a haiku" [model]

The text goes to stdout; the final metrics (tokens, cost, latency) to stderr as one JSON line.
Exit code 1 on an error, before or during the stream.

Read the stream as bytes: `iter_lines()` splits on b"\\n" only, and each `data:` line is one
JSON document. `iter_lines(decode_unicode=True)` would also split on U+2028 and friends, which
may appear raw inside a JSON string, and break the JSON in two.
"""

import json
import os
import sys

import requests

url = os.environ.get("FACADE_URL", "http://localhost:8000").rstrip("/")
key = os.environ.get("FACADE_API_KEY", "sk-demo")
prompt = sys.argv[1] if len(sys.argv) > 1 else "Hello!"
model = sys.argv[2] if len(sys.argv) > 2 else "gpt-3.5-turbo"

resp = requests.post(
    f"{url}/api/v1/chat/completions",
    headers={"Authorization": f"Bearer {key}"},
    json={
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "stream_options": {"include_usage": True},  # the last chunk carries usage + metrics
    },
    stream=True,
    timeout=(5, 300),  # connect, and the longest wait for the next bytes
)
if resp.status_code != 200:  # an error before the stream started: an ordinary JSON envelope
    body = resp.json()
    sys.exit(f"error {body['code']}: {body['message']} (request {body['data']['request_id']})")

metrics = None
for line in resp.iter_lines():  # bytes; blank lines and ": keep-alive" comments are skipped
    if not line.startswith(b"data: "):
        continue
    data = line[len(b"data: ") :]
    if data == b"[DONE]":
        break
    event = json.loads(data)  # the envelope: {success, code, message, data}
    if not event["success"]:  # an error after the stream started
        print()
        sys.exit(
            f"error {event['code']}: {event['message']} (request {event['data']['request_id']})"
        )
    chunk = event["data"]
    for choice in chunk["choices"]:
        print(choice["delta"].get("content") or "", end="", flush=True)
    metrics = chunk.get("metrics") or metrics
else:
    print()
    sys.exit("error: the stream ended without [DONE]")
print()
if metrics:
    print(json.dumps(metrics), file=sys.stderr)

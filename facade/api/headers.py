"""Security headers on every response, in one after_request hook.

Every answer gets `X-Content-Type-Options: nosniff` (a browser must not guess a JSON error or
an SSE stream to be HTML). Every HTML answer, whichever blueprint made it (`/docs`,
`/dashboard`, `/`, anything added later), gets a Content-Security-Policy that allows only the
facade's own origin and no inline code, and may not be framed (clickjacking).
"""

from __future__ import annotations

from flask import Flask, Response

# What a page may load: its own origin, nothing inline, no frames around it. `data:` images
# are the icons inside Swagger UI's stylesheet: part of the page, no other origin reached.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HTML_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def register_security_headers(app: Flask) -> None:
    @app.after_request
    def _security_headers(resp: Response) -> Response:
        headers = resp.headers
        headers["X-Content-Type-Options"] = "nosniff"
        if resp.mimetype == "text/html":
            for name, value in HTML_HEADERS.items():
                headers.setdefault(name, value)
        return resp

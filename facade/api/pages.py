"""Pages for people: `/` (where to go), `/docs` (Swagger UI, offline) and `/dashboard`.

Nothing here loads from another origin: Swagger UI's files come from the installed
`flask-swagger-ui` package (used in place, never copied into this repository), and the
dashboard's script and style from `facade/static/`. Every page is sent with a
Content-Security-Policy that allows only this origin (api/headers.py), and no inline script
or style, so each page's own code is a file of its own (`docs.js`, `dashboard.js`). Pages
are not API operations: they stay out of the OpenAPI spec.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, abort, render_template, request, send_from_directory, url_for

from ..errors import NotFoundError
from .context import gateway

blp = Blueprint("pages", __name__)

SWAGGER_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css"})


@cache
def swagger_dist() -> Path:
    """Swagger UI 5's files inside the installed flask-swagger-ui package."""
    spec = importlib.util.find_spec("flask_swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("flask-swagger-ui is not installed (see requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / "dist"


def page(html: str) -> Response:
    # Its Content-Security-Policy and X-Frame-Options come from api/headers.py, as every
    # HTML answer's do.
    resp = Response(html, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@blp.route("/", methods=["GET"])
def index() -> Response | dict:
    """Point a newcomer at the docs, the dashboard and the probes (HTML for browsers)."""
    links = {
        "docs": url_for("pages.docs"),
        "openapi": url_for("api-docs.openapi_json"),
        "dashboard": url_for("pages.dashboard"),
        "health": url_for("health.healthz"),
        "ready": url_for("health.readyz"),
        "metrics": url_for("health.metrics"),
        "chat": url_for("chat.create_chat_completion"),
        "models": url_for("catalog.list_models"),
    }
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    if (
        best == "text/html"
        and request.accept_mimetypes[best] > request.accept_mimetypes["application/json"]
    ):
        return page(render_template("index.html", links=links))
    return {"name": "Facade", "description": "An enterprise gateway in front of LLMs.", **links}


@blp.route("/docs", methods=["GET"])
def docs() -> Response:
    """Swagger UI for the generated spec, with every asset served from here."""
    return page(render_template("docs.html", spec_url=url_for("api-docs.openapi_json")))


@blp.route("/docs/assets/<name>", methods=["GET"])
def swagger_asset(name: str) -> Response:
    if name not in SWAGGER_FILES:
        abort(404)
    return send_from_directory(swagger_dist(), name, max_age=86400)


@blp.route("/dashboard", methods=["GET"])
def dashboard() -> Response:
    """The operators' page; it asks for the admin key and reads the admin API."""
    if not gateway().settings.admin_key:  # like the admin API: absent without an admin key
        raise NotFoundError("no such page: the dashboard needs FACADE_ADMIN_KEY")
    return page(render_template("dashboard.html", api=url_for("admin.list_keys")[: -len("/keys")]))

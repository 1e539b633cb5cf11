"""Logging: JSON lines on stdout, one shape for every record."""

from __future__ import annotations

import logging
import sys
import time

from .. import jsonutil
from ..settings import Settings

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return jsonutil.dumps(line).decode()


def configure_logging(settings: Settings) -> None:
    # No line here carries a source location or a thread name: skip the stack walk and the
    # lookups logging does for every record (its documented optimisation knobs). The process
    # id stays: gunicorn's own format prints it.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    if any(getattr(h, "_facade", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler._facade = True
    handler.setFormatter(JSONFormatter())
    root.addHandler(handler)
    root.setLevel(settings.log_level)


def warn_demo() -> None:
    """Loud, so nobody exposes the demo's well-known key by accident."""
    banner = "!" * 78
    logging.getLogger("facade.config").warning(
        "\n%s\n!! FACADE IS SERVING THE BUILT-IN DEMO CONFIG (simulator provider, key sk-demo).\n"
        "!! Set FACADE_CONFIG to your own file before exposing this server.\n%s",
        banner,
        banner,
    )

"""House rules a reviewer would otherwise have to remember: small modules, honest noqa."""

from __future__ import annotations

import re
import tomllib

from tests.support import ROOT

MAX_MODULE_LINES = 420  # "no module over about 400 lines"
NOQA = re.compile(r"#\s*noqa:\s*([A-Z0-9, ]+)")


def python_files():
    for top in ("facade", "tests", "bench"):
        yield from (ROOT / top).rglob("*.py")
    yield from (ROOT / name for name in ("wsgi.py", "gunicorn.conf.py"))


def test_no_module_is_much_over_400_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "facade").rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these by concern: {long}"


def test_noqa_names_only_enabled_rules():
    ruff = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    enabled = re.compile(rf"^({'|'.join(ruff['lint']['select'])})\d")
    stray = []
    for path in python_files():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in NOQA.finditer(line):
                codes = [c.strip() for c in match.group(1).split(",") if c.strip()]
                if not codes or not all(enabled.match(c) for c in codes):
                    stray.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not stray, "noqa for rules ruff does not check:\n" + "\n".join(stray)

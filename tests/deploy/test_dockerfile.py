"""The Dockerfile and .dockerignore, checked by reading them (no Docker engine needed).

What is checked is what the deployment relies on: a multi-stage build on python:3.11-slim,
pinned requirements, no compilers in the final image, a non-root numeric user, and gunicorn
started with the repository's gunicorn.conf.py as PID 1.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMMAND = ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
BASE_IMAGE = re.compile(r"python:3\.11-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?")
BUILD_TOOLS = re.compile(
    r"\b(build-essential|gcc|g\+\+|clang|make|cmake|python3?-dev|libc6?-dev|libpq-dev|"
    r"cargo|rustc)\b"
)


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        result.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return result


def stages(text: str) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(text):
        if keyword == "FROM":
            found.append([])
        elif keyword != "ARG":
            assert found, f"{keyword} before the first FROM"
        if found:
            found[-1].append((keyword, args))
    return found


def from_parts(args: str) -> tuple[str, str | None]:
    words = [w for w in args.split() if not w.startswith("--")]
    alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
    return words[0], alias


def exec_form(args: str) -> list[str]:
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        pytest.fail(f"use the exec (JSON) form so gunicorn is PID 1 and gets SIGTERM: {args}")
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


@pytest.fixture(scope="module")
def dockerfile() -> str:
    assert DOCKERFILE.exists(), "no Dockerfile at the repository root"
    return DOCKERFILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def final_stage(dockerfile) -> list[tuple[str, str]]:
    return stages(dockerfile)[-1]


def test_multi_stage_on_python_311_slim(dockerfile):
    all_stages = stages(dockerfile)
    assert len(all_stages) >= 2, "build and runtime should be separate stages"
    aliases = set()
    for stage in all_stages:
        image, alias = from_parts(stage[0][1])
        assert BASE_IMAGE.fullmatch(image) or image in aliases, f"unexpected base {image}"
        if alias:
            aliases.add(alias)
    final_image, _ = from_parts(all_stages[-1][0][1])
    # Not FROM the build stage: that would carry its compilers into the final image.
    assert BASE_IMAGE.fullmatch(final_image), "the final stage must start from python:3.11-slim"


def test_no_build_tools_in_the_final_image(final_stage):
    for keyword, args in final_stage:
        if keyword == "RUN":
            assert not BUILD_TOOLS.search(args), f"build tool in the final stage: {args}"
            assert not re.search(r"\bpip3? install\b", args), "install in the build stage"
        if keyword == "COPY" and "--from=" in args:
            sources = [w for w in shlex.split(args) if not w.startswith("--")][:-1]
            for src in sources:
                # The virtualenv only; never system directories from the build stage.
                assert src.startswith("/opt/"), f"copies {src} from the build stage"


def test_runs_as_a_non_root_numeric_user(final_stage):
    users = [args for keyword, args in final_stage if keyword == "USER"]
    assert users, "the final stage sets no USER"
    user, _, group = users[-1].partition(":")
    # Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert user.isdigit() and int(user) > 0, f"USER {users[-1]} should be a non-zero uid"
    assert not group or (group.isdigit() and int(group) > 0)
    keywords = [k for k, _ in final_stage]
    last_user = len(keywords) - 1 - keywords[::-1].index("USER")
    assert "RUN" not in keywords[last_user:], "nothing should run as root after USER"


def test_starts_gunicorn_with_the_repository_config(final_stage):
    entrypoint = [exec_form(a) for k, a in final_stage if k == "ENTRYPOINT"]
    cmd = [exec_form(a) for k, a in final_stage if k == "CMD"]
    command = (entrypoint[-1] if entrypoint else []) + (cmd[-1] if cmd else [])
    assert command == COMMAND
    workdirs = [a for k, a in final_stage if k == "WORKDIR"]
    assert workdirs, "the final stage sets no WORKDIR (gunicorn.conf.py is relative)"
    copied = " ".join(a for k, a in final_stage if k == "COPY" and "--from=" not in a)
    for needed in ("gunicorn.conf.py", "wsgi.py", "facade/"):
        assert needed in copied, f"{needed} is not copied into the image"
    assert any(k == "EXPOSE" and "8000" in a.split() for k, a in final_stage)


def test_installs_the_pinned_requirements(dockerfile):
    runs = [args for keyword, args in instructions(dockerfile) if keyword == "RUN"]
    assert any(re.search(r"pip3? install\b.*-r \S*requirements\.txt", r) for r in runs)
    assert not any(re.search(r"pip3? install(?!.*-r )", r) for r in runs if "pip" in r), (
        "every package comes from requirements.txt"
    )
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    pins = [line.split("#", 1)[0].strip() for line in lines]
    pins = [p for p in pins if p]
    assert pins
    for pin in pins:
        assert re.fullmatch(
            r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?==[A-Za-z0-9.+!-]+(\s*;.*)?",
            pin,
        ), f"requirements.txt line is not pinned with ==: {pin!r}"


# ---------------------------------------------------------------------------------------------
# .dockerignore


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: the last pattern matching the path or a parent decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").strip("/")
        options = [pat] + ([pat[3:]] if pat.startswith("**/") else [])
        if any(fnmatch.fnmatchcase(c, o) for c in candidates for o in options):
            result = not negate
    return result


def test_dockerignore_sends_only_what_the_image_needs():
    assert DOCKERIGNORE.exists(), "no .dockerignore at the repository root"
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    for path in (
        "requirements.txt",
        "gunicorn.conf.py",
        "wsgi.py",
        "facade/__init__.py",
        "facade/api/routes.py",
    ):
        assert not ignored(path, patterns), f"{path} would be missing from the build context"
    for path in (
        ".git/config",
        ".venv/bin/python",
        ".env",
        "var/facade.db",
        "tests/test_api.py",
        "facade/__pycache__/app.cpython-311.pyc",
        "deploy/kubernetes/overlays/ha/secret.example.yaml",
        "bench/results/run.json",
    ):
        assert ignored(path, patterns), f"{path} would be sent to the Docker daemon"

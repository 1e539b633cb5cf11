"""The seam where limits, budgets and usage records meet the pipeline.

`admit` runs before any upstream call and may refuse (429); the returned `Admission` is
settled with the true cost once the call is measured, or released if nothing was called.
"""

from __future__ import annotations

from typing import Protocol

from .config import ModelConfig, TargetConfig
from .keys import ApiKey


class Admission(Protocol):
    def settle(self, model: ModelConfig, metrics: dict, request_id: str) -> None: ...

    def release(self) -> None: ...


class Accounting(Protocol):
    def admit(
        self,
        key: ApiKey,
        plan: list[tuple[ModelConfig, TargetConfig]],
        body: dict,
        request_id: str,
    ) -> Admission: ...


class _FreeAdmission:
    def settle(self, model: ModelConfig, metrics: dict, request_id: str) -> None:
        return None

    def release(self) -> None:
        return None


class NoAccounting:
    """Counts nothing: for keys without limits, and before a store is configured."""

    _admission = _FreeAdmission()

    def admit(self, key, plan, body, request_id) -> Admission:  # noqa: ANN001
        return self._admission

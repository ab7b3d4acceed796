"""`NoOpComputeLogManager`: output is not captured; steps print to the process's streams."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict

from dagloom.compute_logs.base import ComputeLogManager
from dagloom.compute_logs.capture import StepLog
from dagloom.errors import DagloomError

if TYPE_CHECKING:
    from dagloom.instance._loader import LoadContext


class _NoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoOpComputeLogManager(ComputeLogManager):
    """Captures nothing and has no logs to read (the ephemeral instance's manager)."""

    config_model: ClassVar[type[BaseModel]] = _NoConfig

    @classmethod
    def from_config(cls, config: _NoConfig, context: LoadContext) -> NoOpComputeLogManager:
        return cls()

    @property
    def captures(self) -> bool:
        return False

    def open_step(self, run_id: str, step_key: str, attempt: int) -> StepLog:
        raise DagloomError("NoOpComputeLogManager captures no output")

    def step_finished(self, log: StepLog) -> None:
        log.close()

    async def attempts(self, run_id: str, step_key: str) -> list[int]:
        return []

    async def step_keys(self, run_id: str) -> list[str]:
        return []

    async def read_bytes(
        self, run_id: str, step_key: str, attempt: int, stream: int, cursor: int, max_bytes: int
    ) -> bytes:
        return b""

    def describe(self) -> str:
        return "NoOpComputeLogManager (output not captured)"

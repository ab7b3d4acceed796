"""`LocalComputeLogManager`: step logs as files on this machine's disk (the default)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from dagloom.compute_logs.base import DEFAULT_MAX_BYTES, ComputeLogManager, LocalLogFiles
from dagloom.compute_logs.capture import StepLog

if TYPE_CHECKING:
    from dagloom.instance._loader import LoadContext


class LocalComputeLogManagerConfig(BaseModel):
    """`base_dir` (default `$DAGLOOM_HOME/compute_logs`; relative to `$DAGLOOM_HOME`) and
    `max_bytes`, the most kept per stream of one step attempt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_dir: str | None = None
    max_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)


def resolve_dir(base_dir: str | None, home: Path, default: str = "compute_logs") -> Path:
    """`base_dir` under `home` when relative; `home/default` when None."""
    path = Path(base_dir).expanduser() if base_dir else Path(default)
    return path if path.is_absolute() else home / path


class LocalComputeLogManager(ComputeLogManager):
    """Writes `<base_dir>/<run_id>/<step_key>.<attempt>.out` and `.err` as the step
    prints; readers tail the same files."""

    config_model: ClassVar[type[BaseModel]] = LocalComputeLogManagerConfig

    def __init__(self, base_dir: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.files = LocalLogFiles(Path(base_dir))
        self.max_bytes = max_bytes

    @classmethod
    def from_config(
        cls, config: LocalComputeLogManagerConfig, context: LoadContext
    ) -> LocalComputeLogManager:
        return cls(resolve_dir(config.base_dir, context.home), max_bytes=config.max_bytes)

    @property
    def base_dir(self) -> Path:
        return self.files.base_dir

    def open_step(self, run_id: str, step_key: str, attempt: int) -> StepLog:
        return self.files.open_step(run_id, step_key, attempt, limit=self.max_bytes)

    async def attempts(self, run_id: str, step_key: str) -> list[int]:
        return await self.files.attempts(run_id, step_key)

    async def step_keys(self, run_id: str) -> list[str]:
        return await self.files.step_keys(run_id)

    async def read_bytes(
        self, run_id: str, step_key: str, attempt: int, stream: int, cursor: int, max_bytes: int
    ) -> bytes:
        return await self.files.read(run_id, step_key, attempt, stream, cursor, max_bytes) or b""

    def log_location(self, run_id: str, step_key: str, attempt: int, stream: int) -> str | None:
        return str(self.files.paths(run_id, step_key, attempt)[stream])

    def describe(self) -> str:
        return f"LocalComputeLogManager at {self.base_dir}"

"""The public API: the gRPC server of `DagloomApi`, and `AsyncClient` to call it from Python."""

from __future__ import annotations

from dagloom.api.client import ApiCalls, AsyncClient
from dagloom.api.server import ApiServer, DagloomApiService

__all__ = ["ApiCalls", "ApiServer", "AsyncClient", "DagloomApiService"]

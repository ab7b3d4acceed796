"""User code: importing a code location's file or module and finding its Definitions."""

from __future__ import annotations

from dagloom.code.loader import LOCATION_PACKAGE, definitions_from_module, load_definitions

__all__ = ["LOCATION_PACKAGE", "definitions_from_module", "load_definitions"]

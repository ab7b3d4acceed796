"""Command groups whose subcommands import their module on first use.

Each command module registers its commands on a typer app when imported, and some import
heavy stacks (gRPC, the servers, storage). A lazy group knows, for each subcommand it does not
hold yet, the module that registers it and the one-line help shown in the group's `--help`;
running a subcommand imports just that module, then rebuilds the click command from the typer
app the module registered on. Listing the group (`--help`) imports nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import typer

# typer builds its commands on its own copy of click; the lazy group extends those classes.
from typer._click import Command, Context, HelpFormatter
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """Where a subcommand is registered, and the help line its group lists for it."""

    module: str
    """The module whose import registers the subcommand."""
    help: str
    """The first paragraph of the subcommand's help, as its group's `--help` lists it."""


class LazyGroup(TyperGroup):
    """A typer group that imports a subcommand's module when the subcommand is first needed.

    Subclasses name the typer app they are built from (`owner`, as "module:attribute") and
    the subcommands to load lazily (`lazy`); `lazy_group` makes such a subclass.
    """

    owner: ClassVar[str] = ""
    lazy: ClassVar[Mapping[str, LazyCommand]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listing = False

    def list_commands(self, ctx: Context) -> list[str]:
        # The group's own commands, then the lazy ones in their table's order, whichever of
        # them are loaded: the listing does not depend on what ran before.
        own = [name for name in super().list_commands(ctx) if name not in self.lazy]
        return [*own, *self.lazy]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        entry = self.lazy.get(cmd_name)
        if entry is None:
            return None
        if self._listing:
            # Only the name and help line are shown: do not import the module for them.
            return TyperCommand(cmd_name, help=entry.help)
        command = self._load(cmd_name, entry)
        self.add_command(command, cmd_name)
        return command

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        with self._listing_only():
            super().format_help(ctx, formatter)

    @contextmanager
    def _listing_only(self) -> Iterator[None]:
        self._listing = True
        try:
            yield
        finally:
            self._listing = False

    def _load(self, cmd_name: str, entry: LazyCommand) -> Command:
        importlib.import_module(entry.module)
        module_name, _, attribute = self.owner.partition(":")
        owner = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(owner, typer.Typer):
            raise TypeError(f"{self.owner} is not a typer app")
        built = typer.main.get_group(owner)
        command = built.commands.get(cmd_name)
        if command is None:
            raise RuntimeError(
                f"importing {entry.module} did not register command {cmd_name!r} on {self.owner}"
            )
        return command


def lazy_group(owner: str, lazy: Mapping[str, LazyCommand]) -> type[LazyGroup]:
    """A `LazyGroup` class built from the typer app `owner` ("module:attribute"), loading the
    subcommands of `lazy` on first use; pass it as `typer.Typer(cls=...)`."""
    return type(
        "LazyGroup", (LazyGroup,), {"owner": owner, "lazy": dict(lazy), "__module__": __name__}
    )

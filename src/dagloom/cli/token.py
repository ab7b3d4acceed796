"""`dagloom token create|list|revoke`: the instance's API tokens."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from dagloom.cli._app import app
from dagloom.cli._instance_option import (
    ConfigOption,
    HomeOption,
    console,
    errors,
    open_instance,
    run_command,
)

token_app = typer.Typer(help="Create, list and revoke API tokens (stored hashed).")
app.add_typer(token_app, name="token")


def _when(at: float | None) -> str:
    if at is None:
        return "never"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@token_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Who or what holds the token.")],
    role: Annotated[
        str, typer.Option("--role", help="viewer, launcher, editor or admin.")
    ] = "viewer",
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="A duration (30d, 12h, 2w) or an ISO date; default never."),
    ] = None,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a token and print it once: the token alone is the last line of stdout.

    Only a hash of it is stored; a lost token cannot be shown again, only revoked.
    """
    from dagloom.auth import Role, new_token, parse_expiry
    from dagloom.topology.security import token_storage

    now = time.time()
    try:
        chosen = Role.parse(role)
        expires_at = parse_expiry(expires, now=now) if expires else None
        stored, text = new_token(name, chosen, now=now, expires_at=expires_at)
    except ValueError as exc:
        raise _usage(str(exc)) from None

    async def main() -> None:
        async with open_instance(home, config) as instance:
            await token_storage(instance).add_api_token(stored)

    run_command(main)
    console.print(
        f"created token {stored.token_id} {name!r} ({chosen.label}), "
        f"expires {_when(expires_at)}; it is shown only now:",
        soft_wrap=True,
    )
    print(text, flush=True)


def _usage(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True)
    return typer.Exit(2)


@token_app.command("list")
def list_tokens(home: HomeOption = None, config: ConfigOption = None) -> None:
    """List every token: id, name, role, state, created and expiry (never the secret)."""
    from dagloom.topology.security import token_storage

    async def main() -> None:
        async with open_instance(home, config) as instance:
            tokens = await token_storage(instance).get_api_tokens()
        now = time.time()
        table = Table("id", "name", "role", "state", "created", "expires")
        for t in tokens:
            table.add_row(
                t.token_id,
                t.name,
                t.role.label,
                t.state(now),
                _when(t.created_at),
                _when(t.expires_at),
            )
        console.print(table)

    run_command(main)


@token_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (see `dagloom token list`).")],
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Revoke a token: calls presenting it are refused from now on (within 5 s on nodes
    that checked it recently). Revoking twice is safe."""
    from dagloom.errors import DagloomError
    from dagloom.topology.security import token_storage

    async def main() -> None:
        async with open_instance(home, config) as instance:
            token = await token_storage(instance).revoke_api_token(token_id, time.time())
        if token is None:
            raise DagloomError(f"no token with id {token_id!r}")
        console.print(f"revoked token {token.token_id} {token.name!r} at {_when(token.revoked_at)}")

    run_command(main)

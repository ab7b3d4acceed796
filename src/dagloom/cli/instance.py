"""`dagloom instance info|migrate`: what the instance is configured with, and schema upgrades."""

from __future__ import annotations

import typer
from rich.table import Table

from dagloom.cli._app import app
from dagloom.cli._instance_option import HomeOption, console, run_command

instance_app = typer.Typer(help="Inspect and upgrade the instance ($DAGLOOM_HOME).")
app.add_typer(instance_app, name="instance")


@instance_app.command("info")
def info(home: HomeOption = None) -> None:
    """Print the instance home, config file, each component and the schema versions."""
    from dagloom.instance import DagloomInstance

    async def main() -> None:
        instance = DagloomInstance.open(home)
        console.print(f"home: {instance.home}")
        console.print(f"config: {instance.config_source or '(none: embedded defaults)'}")
        table = Table("section", "configured")
        for section, what in instance.describe():
            table.add_row(section, what)
        console.print(table)
        auth, tls = instance.config.auth, instance.config.tls
        console.print(
            f"auth: {'enabled' if auth.enabled else 'disabled'}; cluster secret: "
            f"{'set' if auth.cluster_secret else 'not set'}; tls: "
            + ("off" if tls is None else "mutual" if tls.ca and tls.cert else "on"),
            markup=False,
        )
        versions = Table("database", "schema version", "latest", "state")
        for section, schema in await instance.schema_info():
            state = (
                "up to date"
                if schema.up_to_date
                else "empty"
                if schema.current == 0
                else "run `dagloom instance migrate`"
                if schema.current < schema.latest
                else "newer than this dagloom"
            )
            versions.add_row(
                f"{section}: {schema.location}", str(schema.current), str(schema.latest), state
            )
        console.print(versions)

    run_command(main)


@instance_app.command("migrate")
def migrate(home: HomeOption = None) -> None:
    """Upgrade every database of the instance to the latest schema (safe to repeat)."""
    from dagloom.instance import DagloomInstance

    async def main() -> None:
        instance = DagloomInstance.open(home)
        before = dict(await instance.schema_info())
        for section, schema in await instance.migrate():
            was = before[section].current
            if was == schema.current:
                console.print(f"{schema.location}: at version {schema.current}, up to date")
            else:
                console.print(f"{schema.location}: migrated from version {was} to {schema.current}")

    run_command(main)

"""Declarative automation: assets that keep themselves up to date.

`raw_orders` is produced outside dagloom (an external asset: report its materializations
with the CLI, the GraphQL API or the REST endpoint, or record them from another tool).
`orders` and `order_summary` are eager: when an upstream asset updates, the daemon's
automation loop requests them, in one run. `daily_report` runs once a day, after its
upstream updated since midnight.

    dagloom dev -f examples/automation.py
    # in another shell, with the same $DAGLOOM_HOME:
    dagloom asset report-materialization raw_orders --metadata '{"rows": 120}'
    dagloom run list                         # orders and order_summary ran, in one run
    dagloom asset automation orders          # why it was (or was not) requested
"""

from __future__ import annotations

import dagloom as dg

raw_orders = dg.AssetSpec("raw_orders", description="Orders exported by the shop, nightly.")


@dg.asset(deps=[raw_orders], automation_condition=dg.AutomationCondition.eager())
def orders() -> list[int]:
    """The orders, cleaned."""
    return [3, 5, 8]


@dg.asset(automation_condition=dg.AutomationCondition.eager())
def order_summary(orders: list[int]) -> dict[str, int]:
    """How many orders and their total."""
    return {"count": len(orders), "total": sum(orders)}


@dg.asset(automation_condition=dg.AutomationCondition.on_cron("0 0 * * *"))
def daily_report(order_summary: dict[str, int]) -> str:
    """A line for the daily mail."""
    return f"{order_summary['count']} orders, {order_summary['total']} in total"


defs = dg.Definitions(assets=[raw_orders, orders, order_summary, daily_report])

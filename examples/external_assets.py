"""External assets: data another system writes, shown in lineage and reported to dagloom.

`raw_orders` is written by an outside loader, which reports each load:

    dagloom asset report-materialization raw_orders --metadata '{"rows": 120}' --data-version 7

(or POSTs to the webserver's /report_asset_materialization/raw_orders). `orders_summary`
reads it; under `dagloom dev -f examples/external_assets.py`, the `raw_orders_updated` sensor
(running by default) sees the reported materialization and launches `summarize`, so the
summary is rebuilt by itself. `dagloom asset list` shows `orders_summary` STALE between the
report and that run. `exchange_rates` is observed instead: the `observe_rates` job records its
data version, and `priced_orders` is stale whenever the rates change under it.
"""

import hashlib
import json
import os
from pathlib import Path

import dagloom as dg

DATA_DIR = Path(os.environ.get("EXTERNAL_ASSETS_DIR", Path(__file__).parent / ".external"))

raw_orders = dg.AssetSpec(
    "raw_orders",
    description="Orders the nightly loader writes to raw_orders.json",
    group_name="external",
)


@dg.observable_source_asset(group_name="external")
def exchange_rates() -> dg.DataVersion:
    """Exchange rates another team publishes; the version is the file's content hash."""
    path = DATA_DIR / "rates.json"
    if not path.exists():
        return dg.DataVersion("none")
    return dg.DataVersion(hashlib.sha256(path.read_bytes()).hexdigest()[:16])


@dg.asset(deps=[raw_orders], code_version="1")
def orders_summary() -> dg.MaterializeResult:
    """How many orders the loader wrote, and their total."""
    path = DATA_DIR / "raw_orders.json"
    orders = json.loads(path.read_text()) if path.exists() else []
    total = sum(order.get("amount", 0) for order in orders)
    return dg.MaterializeResult(metadata={"orders": len(orders), "total": total})


@dg.asset(deps=[exchange_rates, orders_summary], code_version="1")
def priced_orders() -> None:
    """The summary in every currency (recomputed when the rates or the summary change)."""


summarize = dg.define_asset_job("summarize", selection=["orders_summary"])
observe_rates = dg.define_asset_job("observe_rates", selection=["exchange_rates"])


@dg.asset_sensor(
    asset_key=dg.AssetKey("raw_orders"),
    job=summarize,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def raw_orders_updated(context, asset_event):
    """Rebuild the summary after each reported load of raw_orders."""
    return dg.RunRequest(run_key=str(asset_event.storage_id))


defs = dg.Definitions(
    assets=[
        *dg.external_assets_from_specs([raw_orders]),
        exchange_rates,
        orders_summary,
        priced_orders,
    ],
    jobs=[summarize, observe_rates],
    sensors=[raw_orders_updated],
)

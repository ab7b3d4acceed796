"""The tags a run worker keeps on the run it executes (read by run monitoring).

Apart from the run worker actor, whose module loads the gRPC stubs, so that a run in this
process can write its heartbeat without them.
"""

from __future__ import annotations

WORKER_TAG = "dagloom/run_worker"
"""Run tag naming the worker executing the run."""
HEARTBEAT_TAG = "dagloom/heartbeat"
"""Run tag holding the worker's last heartbeat for the run (seconds since the epoch)."""

"""One of several processes that open the same fresh SQLite MLflow store at the same instant
(tests/tracking/test_concurrent_store.py): import, say ready, wait for the others, then create a run in it.

    python store_script.py TRACKING_URI READY_DIR INDEX COUNT
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import mlflow  # noqa: F401 - imported before the barrier, so that the processes meet at the store itself

from glassloop.callbacks.tracking import client, experiment_id

uri, ready, index, count = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
(ready / f"ready-{index}").touch()
deadline = time.monotonic() + 240
while len(list(ready.glob("ready-*"))) < count and time.monotonic() < deadline:
    time.sleep(0.005)
store = client(uri)
run = store.create_run(experiment_id(store, "concurrent", uri), run_name=f"process-{index}")
store.log_metric(run.info.run_id, "index", float(index), step=1)
store.set_terminated(run.info.run_id, "FINISHED")
print(run.info.run_id)

"""gunicorn's settings module for the web process (`gunicorn -c python:config.gunicorn`): Prometheus
multiprocess mode, so /metrics sums django-prometheus's series over every worker instead of reporting
whichever worker answered the scrape.

PROMETHEUS_MULTIPROC_DIR (default $WALLET_RUN_DIR/prometheus) is set here, before any worker imports
prometheus_client, and emptied when the master starts: the files of a previous run's workers would be
added to this run's. When a worker exits its live gauges are dropped (child_exit); its counters stay in
the sum, so a counter never goes down while the server runs.
"""

import os
import shutil
from pathlib import Path
from typing import Any

_RUN_DIR = os.environ.get("WALLET_RUN_DIR") or str(Path(__file__).resolve().parent.parent / ".run")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(Path(_RUN_DIR) / "prometheus"))


def on_starting(server: Any) -> None:
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)

"""Two per-step costs of this code location on Celery that the code location itself removes.

1. ``S3Resource.get_client`` (dagster-aws) builds a new boto3 session and client on every call, and a Celery
   step initialises its resources anew: botocore re-reads its endpoint and S3 service model JSON files
   every time, which was the largest single cost of a trivial step in the worker (~40% of it;
   benchmarks/profile_step.py). ``CachedS3Resource`` is the same resource with the client kept per process
   and per configuration (boto3 clients are thread-safe; a forked process makes its own).
2. The run worker's Celery executor sleeps ``TICK_SECONDS`` (1 s) between polls of its steps' results
   (dagster_celery.core_execution_loop), so each step that waits for another one starts up to 1 s late and
   the run ends up to 1 s after its last step. ``set_executor_poll_interval`` lowers it in the run worker
   (the module reads the value on every loop). Each poll asks the result backend once per step still
   running (one ``basic_get`` with ``rpc://``), so the interval stays well above a broker round trip.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from dagster_aws.s3 import S3Resource

EXECUTOR_POLL_SECONDS = 0.1

_clients: dict[tuple[int, str], Any] = {}  # (pid, configuration) -> client
_lock = threading.Lock()


class CachedS3Resource(S3Resource):
    """``dagster_aws.s3.S3Resource`` whose boto3 client is made once per process and configuration (the
    resource's fields and the ``AWS_*`` environment boto3 reads, e.g. ``AWS_ENDPOINT_URL_S3``)."""

    def get_client(self) -> Any:
        aws_env = sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))
        key = (os.getpid(), json.dumps([self.model_dump(), aws_env], sort_keys=True, default=str))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = super().get_client()
            return client


def set_executor_poll_interval(seconds: float = EXECUTOR_POLL_SECONDS) -> None:
    import dagster_celery.core_execution_loop as loop

    loop.TICK_SECONDS = seconds

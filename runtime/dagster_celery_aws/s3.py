"""The code location's S3 resources, made once per process instead of once per Celery step.

A Celery step initialises its resources anew in the worker, where in-process execution does it once per
run (benchmarks/profile_step.py shows where a step's time goes):

1. ``S3Resource.get_client`` (dagster-aws) builds a new boto3 session and client on every call: botocore
   re-reads its endpoint and S3 service model JSON files every time, which was the largest single cost of
   a trivial step in the worker (~40% of it). ``CachedS3Resource`` is the same resource with the client
   kept per process and per configuration (boto3 clients are thread-safe; a forked process makes its own).
2. ``S3PickleIOManager`` builds its inner I/O manager on first use in each step, and that constructor
   lists the bucket prefix (one S3 request, an access check) every time. ``s3_pickle_io_manager`` keeps
   the inner I/O manager per process and configuration, so the check is made once per process.

``deployment_resources`` gives a code location both, on the deployment's bucket.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any

from dagster import Field, StringSource, io_manager
from dagster_aws.s3 import S3Resource
from dagster_aws.s3.io_manager import PickledObjectS3IOManager

S3_BUCKET_VAR = "DAGSTER_S3_BUCKET"  # infra/specs/contract.py S3_BUCKET
IO_PREFIX = "io"  # infra/specs/contract.py IO_PREFIX

_kept: dict[tuple[int, str], Any] = {}  # (pid, what and its configuration) -> object
_lock = threading.RLock()  # a factory may itself use per_process


def per_process(key: Any, make: Callable[[], Any]) -> Any:
    """The object made by ``make`` for ``key`` (JSON-able) in this process, made on first use."""
    k = (os.getpid(), json.dumps(key, sort_keys=True, default=str))
    with _lock:
        if k not in _kept:
            _kept[k] = make()
        return _kept[k]


def _aws_env() -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))


class CachedS3Resource(S3Resource):
    """``dagster_aws.s3.S3Resource`` whose boto3 client is made once per process and configuration (the
    resource's fields and the ``AWS_*`` environment boto3 reads, e.g. ``AWS_ENDPOINT_URL_S3``)."""

    def get_client(self) -> Any:
        return per_process(["s3-client", self.model_dump(), _aws_env()], super().get_client)


@io_manager(
    config_schema={
        "s3_bucket": Field(StringSource, description="S3 bucket of the outputs"),
        "s3_prefix": Field(StringSource, is_required=False, default_value="dagster", description="key prefix"),
    },
    description="dagster-aws's S3 pickle I/O manager (PickledObjectS3IOManager), made once per process",
)
def s3_pickle_io_manager(init_context) -> PickledObjectS3IOManager:
    """dagster-aws's ``PickledObjectS3IOManager`` (what ``S3PickleIOManager`` delegates to), made once per
    process, bucket, prefix and ``AWS_*`` environment, on a ``CachedS3Resource`` client."""
    bucket, prefix = init_context.resource_config["s3_bucket"], init_context.resource_config["s3_prefix"]
    return per_process(
        ["s3-pickle-io-manager", bucket, prefix, _aws_env()],
        lambda: PickledObjectS3IOManager(s3_bucket=bucket, s3_session=CachedS3Resource().get_client(), s3_prefix=prefix),
    )


def deployment_resources() -> dict[str, Any]:
    """The resources of a code location on this deployment: ``s3`` (a ``CachedS3Resource``, for your own S3
    calls) and ``io_manager``, step outputs pickled to the deployment's bucket (``$DAGSTER_S3_BUCKET``, read
    when a run starts) under the key prefix ``io``. The S3 endpoint is boto3's: AWS on ECS,
    ``AWS_ENDPOINT_URL_S3`` locally."""
    return {
        "s3": CachedS3Resource(),
        "io_manager": s3_pickle_io_manager.configured({"s3_bucket": {"env": S3_BUCKET_VAR}, "s3_prefix": IO_PREFIX}),
    }

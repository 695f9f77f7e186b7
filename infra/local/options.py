"""Command-line flags of the local runner; every flag also has an environment variable (the flag wins)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_DIR = REPO_ROOT / "worker_image"




@dataclass(frozen=True)
class Options:
    command: str
    stack_file: Path
    once: bool
    job: str | None  # None: example_job for the example, else nothing unless assets are selected
    code_module: str | None  # None: the stack file's codeLocations, or the example
    code_dir: str | None  # the directory --code-module loads from (default: the repository root)
    broker_url: str | None  # None: embedded filesystem:// broker
    database_url: str | None  # None: embedded sqlite storage
    s3_endpoint: str | None  # None: embedded moto S3 server
    bucket: str
    state_dir: Path
    port: int  # 0: any free port
    timeout: float  # seconds to wait for the job's run to finish
    no_consumer_seconds: float | None = None  # None: the stack's operations.noConsumerMinutes; 0: no watchdog
    select: tuple[str, ...] = ()  # asset keys to materialize ("a", "prefix/name")
    partition: str | None = None
    backfill: tuple[str, ...] = ()  # partitions of a backfill
    tags: tuple[tuple[str, str], ...] = ()  # run tags
    canary: bool = False  # run dagster_celery_aws.canary's job: one step on every queue of the stack


# flag -> (environment variable, default)
ENV = {
    "stack_file": ("DCA_STACK_FILE", "Pulumi.dev.yaml"),
    "job": ("DCA_JOB", None),
    "code_module": ("DCA_CODE_MODULE", None),
    "code_dir": ("DCA_CODE_DIR", None),
    "broker_url": ("DCA_BROKER_URL", None),
    "database_url": ("DCA_DATABASE_URL", None),
    "s3_endpoint": ("DCA_S3_ENDPOINT", None),
    "bucket": ("DCA_S3_BUCKET", "dagster-local"),
    "state_dir": ("DCA_STATE_DIR", ".local"),
    "port": ("DCA_PORT", "3000"),
    "timeout": ("DCA_TIMEOUT", "600"),
    "no_consumer_seconds": ("DCA_NO_CONSUMER_SECONDS", None),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m infra.local",
        description="Run the stack's topology (webserver, daemon, one Celery worker per queue) on this machine, "
        "run a job on it and report where each step ran. Backing services are embedded unless URLs are given.",
    )
    p.add_argument("command", nargs="?", default="up", choices=["up"], help="only 'up' (the default)")
    p.add_argument("--once", action="store_true", help="run the job, print the outcome, stop; exit 0 only on success")

    def opt(flag: str, key: str, help_: str, **kw) -> None:
        env, default = ENV[key]
        shown = f"; default {default}" if default is not None else ""
        p.add_argument(flag, dest=key, default=os.environ.get(env, default), help=f"{help_} (env {env}{shown})", **kw)

    opt("--stack-file", "stack_file", "Pulumi stack file to read queues and sizes from")
    opt("--job", "job", "job to run (default: example_job with the example code; with your code locations, none: "
        "the UI serves them and nothing is launched unless --select is given)")
    p.add_argument("--select", action="append", default=[], metavar="KEY[,KEY]",
                   help="asset keys to materialize, as the UI's Materialize does (prefix/name for a key with a prefix); "
                   "without --job, in Dagster's implicit asset job")
    p.add_argument("--partition", default=None, help="the partition to run (the run's dagster/partition tag)")
    p.add_argument("--backfill", default=None, metavar="P1,P2",
                   help="launch a backfill of these partitions of the assets of --select (an asset backfill)")
    p.add_argument("--canary", action="store_true", help="run the canary job (dagster_celery_aws.canary, in a code "
                   "location's Definitions): one step on every queue of the stack file")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="a run tag (repeatable)")
    opt("--code-module", "code_module", "Python module of one Dagster code location, instead of the stack file's "
        "codeLocations (default: those, or the repository's example)")
    opt("--code-dir", "code_dir", "directory --code-module is imported from (default: the repository root)")
    opt("--broker-url", "broker_url", "Celery broker URL, e.g. amqp://guest:guest@127.0.0.1:5672/vhost (default: embedded filesystem broker)")
    opt("--database-url", "database_url", "PostgreSQL URL postgresql://user:pass@host:port/db (default: embedded sqlite)")
    opt("--s3-endpoint", "s3_endpoint", "S3 API endpoint, e.g. http://127.0.0.1:9000 (default: embedded moto server)")
    opt("--bucket", "bucket", "bucket for step outputs and compute logs (created if missing)")
    opt("--state-dir", "state_dir", "directory for runtime files, logs and embedded data")
    opt("--port", "port", "webserver port on 127.0.0.1 (0: any free port)")
    opt("--timeout", "timeout", "seconds to wait for the run to finish")
    opt("--no-consumer-seconds", "no_consumer_seconds", "fail a run whose step waits this long on a queue with no "
        "consumer, naming the queue (AMQP broker only; 0: never; default: the stack's operations.noConsumerMinutes)")
    return p


def parse(argv: list[str] | None = None) -> Options:
    p = parser()
    a = p.parse_args(argv)
    try:
        port, timeout = int(a.port), float(a.timeout)
        no_consumer = None if a.no_consumer_seconds in (None, "") else float(a.no_consumer_seconds)
    except ValueError:
        p.error(f"--port must be an integer, --timeout and --no-consumer-seconds numbers "
                f"(got {a.port!r}, {a.timeout!r}, {a.no_consumer_seconds!r})")
    if no_consumer is not None and no_consumer < 0:
        p.error(f"--no-consumer-seconds must be >= 0 (got {no_consumer})")
    if not 0 <= port <= 65535:
        p.error(f"--port {port} is not a TCP port (0-65535)")
    tags = []
    for tag in a.tag:
        key, eq, value = tag.partition("=")
        if not eq or not key:
            p.error(f"--tag {tag!r}: expected KEY=VALUE")
        tags.append((key, value))
    select = tuple(k.strip() for s in a.select for k in s.split(",") if k.strip())
    backfill = tuple(x.strip() for x in (a.backfill or "").split(",") if x.strip())
    if a.backfill is not None and not backfill:
        p.error("--backfill needs at least one partition name")
    if backfill and a.partition:
        p.error("--partition and --backfill exclude each other: a backfill names its partitions")
    if backfill and not select:
        p.error("--backfill needs the assets to backfill (--select)")
    if a.canary and (a.job or select):
        p.error("--canary runs the canary job: leave out --job and --select")
    return Options(
        command=a.command,
        stack_file=Path(a.stack_file),
        once=a.once,
        job=a.job or None,
        code_module=a.code_module or None,
        code_dir=a.code_dir or None,
        broker_url=a.broker_url or None,
        database_url=a.database_url or None,
        s3_endpoint=a.s3_endpoint or None,
        bucket=a.bucket,
        state_dir=Path(a.state_dir).resolve(),
        port=port,
        timeout=timeout,
        no_consumer_seconds=no_consumer,
        select=select,
        partition=a.partition or None,
        backfill=backfill,
        tags=tuple(tags),
        canary=a.canary,
    )

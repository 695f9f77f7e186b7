"""Database connection budget: will the workers at maximum scale fit in the database's max_connections?

RDS PostgreSQL's default ``max_connections`` is ``LEAST({DBInstanceClassMemory/9531392}, 5000)`` (RDS user
guide, "CHAP_Limits", MaxConnections). DBInstanceClassMemory is the class memory less what the OS and RDS
keep; measured values (db.t2.small 2 GiB -> 198) put it near 88 % of the nominal memory, which we use.
"""

from __future__ import annotations

_GIB = 1024**3

# Nominal memory (GiB) of the PostgreSQL instance classes we know (AWS RDS instance class tables).
RDS_MEMORY_GIB: dict[str, float] = {
    **{f"db.{family}.micro": 1 for family in ("t3", "t4g")},
    **{f"db.{family}.small": 2 for family in ("t3", "t4g")},
    **{f"db.{family}.medium": 4 for family in ("t3", "t4g")},
    **{f"db.{family}.large": 8 for family in ("t3", "t4g")},
    **{f"db.{family}.xlarge": 16 for family in ("t3", "t4g")},
    **{f"db.{family}.2xlarge": 32 for family in ("t3", "t4g")},
    **{f"db.{family}.{size}": mem for family in ("m5", "m6g", "m6i", "m7g", "m7i")
       for size, mem in (("large", 8), ("xlarge", 16), ("2xlarge", 32), ("4xlarge", 64), ("8xlarge", 128))},
    **{f"db.{family}.{size}": mem for family in ("r5", "r6g", "r6i", "r7g", "r7i")
       for size, mem in (("large", 16), ("xlarge", 32), ("2xlarge", 64), ("4xlarge", 128), ("8xlarge", 256))},
}

# Connections each process may hold at once (peaks). A worker pool process keeps one pooled connection per
# storage it uses -- run, event log, rarely schedule -- opens one more for a nested call
# (dagster_celery_aws.fast_task), and one for Celery's result backend, which is the same database
# (celery_config.yaml: backend). A run worker on the Celery executor pools its run and event-log storages the
# same way (dagster_celery_aws.executor celery_executor); it makes one storage call at a time and does not
# use the schedule storage: one connection kept per storage, one nested, one kept for polling the results,
# and one listening for the workers' result notices (dagster_celery_aws.result_notices); 3 at most sampled
# every 10 ms over fan-out and chain runs, notices included:
PER_WORKER_SLOT = 5
PER_RUN = 4
WEBSERVER = 10  # concurrent GraphQL requests and the event-log watcher, per task
DAEMON = 12  # one thread per daemon (schedules, sensors, run queue, monitoring, backfills, ...)
RESERVED = 3  # rds.superuser_reserved_connections


def max_connections(instance_class: str) -> int:
    return min(int(RDS_MEMORY_GIB[instance_class] * 0.88 * _GIB / 9531392), 5000)


def peak_connections(worker_slots: int, max_concurrent_runs: int, webservers: int) -> dict[str, int]:
    """The connection peak of each part of the stack at maximum scale (worker slots: sum of maxWorkers x
    concurrency over the queues)."""
    return {
        "workers": worker_slots * PER_WORKER_SLOT,
        "runs": max_concurrent_runs * PER_RUN,
        "webserver": webservers * WEBSERVER,
        "daemon": DAEMON,
        "reserved": RESERVED,
    }


def connection_problem(peaks: dict[str, int], instance_class: str, limit: int | None) -> str | None:
    """Why the stack at maximum scale (``peaks``) would exceed the database's connections (``limit``, or the
    instance class's default), or None if it fits."""
    limit = limit or max_connections(instance_class)
    total = sum(peaks.values())
    if total <= limit:
        return None
    parts = ", ".join(f"{name} {n}" for name, n in peaks.items())
    return (
        f"at maximum scale the stack may open {total} database connections ({parts}; "
        f"{PER_WORKER_SLOT} per worker slot = sum of maxWorkers x concurrency, {PER_RUN} per concurrent run) "
        f"but database.instanceClass {instance_class!r} allows {limit}: lower queues[].maxWorkers, "
        f"concurrency or runs.maxConcurrentRuns, or choose a larger database.instanceClass"
    )


# Memory floor of the daemon's task with runs.mode 'daemon' (MiB, resident; benchmarks/run_start.py and
# benchmarks/README.md, "Run start"): the example code location on this image's Python, so a floor, not a
# fit -- a code location's own imports add to every process that loads it.
# dagster-daemon (133), its code server (150), the alerts location's code server (131: dagster api grpc -m
# dagster_celery_aws.alert_sensors with every kind on, VmHWM), the code location check's fresh code server, one at a
# time (150), and the run purge sidecar (115: python -m dagster_celery_aws.retention after a pass, VmHWM)
DAEMON_PROCESSES_MIB = 680
# dagster-webserver (160), its code server (150) and its code server of the alerts location (131): ui.access 'ssm'
# puts them there
WEBSERVER_PROCESSES_MIB = 440
RUN_WORKER_MIB = 135  # one run worker of example_job at its peak (VmHWM)


def daemon_memory_floor(max_concurrent_runs: int, with_webserver: bool) -> int:
    """MiB the daemon's task needs at least with runs.mode 'daemon': its processes (the webserver's too when it
    runs there) and every run worker."""
    webserver = WEBSERVER_PROCESSES_MIB if with_webserver else 0
    return DAEMON_PROCESSES_MIB + webserver + max_concurrent_runs * RUN_WORKER_MIB

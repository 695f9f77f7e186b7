"""``python -m dagster_celery_aws.pool_limits``: set the stack's concurrency pool limits on the instance.

Dagster keeps a pool's limit in the instance's storage, not in dagster.yaml (which has only the default for pools
without one), and sets it with ``dagster instance concurrency set POOL LIMIT`` or the UI. The stack's limits
(stack config ``runs.pools.limits``, in ``DCA_INSTANCE_SETTINGS``) are set the same way, after the schema migration
and before the daemon starts (on ECS a step of the daemon's task; locally the runner's). Pools the stack does not
name keep the limit they have.
"""

from __future__ import annotations

import json
import os

from dagster_celery_aws.instance_settings import POOL_LIMITS, SETTINGS_VAR


def set_limits(instance, limits: dict[str, int]) -> None:
    for pool, limit in limits.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)  # what `dagster instance concurrency set` does


def main() -> None:
    limits = json.loads(os.environ.get(SETTINGS_VAR) or "{}").get(POOL_LIMITS) or {}
    if limits:  # Dagster is imported only then: a stack without pool limits pays a bare Python start
        from dagster import DagsterInstance

        with DagsterInstance.get() as instance:
            set_limits(instance, limits)
    print(f"pool limits set: {', '.join(f'{k}={v}' for k, v in limits.items()) or 'none'}")


if __name__ == "__main__":
    main()

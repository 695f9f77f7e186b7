"""The stack's Dagster instance settings that dagster.yaml cannot read from the environment.

Run retries, run and pool concurrency and tick retention take no ``env:`` source in Dagster's instance config, so
the stack config's values are given to every process as JSON (contract.INSTANCE_SETTINGS) and written into
dagster.yaml when a container starts (``dagster_celery_aws.instance_settings``, the entry point of every task
definition) or by the local runner. One function, used by both.
"""

from __future__ import annotations

import json

from infra.stackfile.config import StackConfig


def settings(cfg: StackConfig) -> dict:
    """The dagster.yaml sections of ``cfg`` (Dagster 1.13's instance config schema)."""
    runs, ticks = cfg.runs, cfg.retention.tick_days
    tag_limits = []
    for t in runs.tag_limits:
        limit = {"key": t.key, "limit": t.limit}
        if t.value is not None:
            limit["value"] = t.value
        elif t.per_value:
            limit["value"] = {"applyLimitPerUniqueValue": True}
        tag_limits.append(limit)
    pools = {"granularity": runs.pools.granularity}
    if runs.pools.default_limit is not None:
        pools["default_limit"] = runs.pools.default_limit
    return {
        # Not dagster.yaml sections: set on the instance before the daemon starts (dagster_celery_aws.pool_limits),
        # and read by the run purge beside the daemon (dagster_celery_aws.retention).
        "pool_limits": dict(sorted(runs.pools.limits.items())),
        "run_retention_days": cfg.retention.run_days,
        # Dagster's own tick purge (the scheduler and sensor daemons); a skipped sensor tick, the most frequent,
        # stays no longer than Dagster's default 7 days.
        "retention": {
            "schedule": {"purge_after_days": ticks},
            "sensor": {"purge_after_days": {"skipped": min(ticks, 7), "success": ticks, "failure": ticks, "started": ticks}},
        },
        "run_retries": {
            "enabled": runs.retries.max_retries > 0,
            "max_retries": runs.retries.max_retries,
            "retry_on_asset_or_op_failure": runs.retries.retry_on_step_failure,
        },
        # All run-queue limits here: Dagster refuses `concurrency` beside the run coordinator's own limits.
        "concurrency": {
            "runs": {"max_concurrent_runs": runs.max_concurrent_runs, "tag_concurrency_limits": tag_limits},
            "pools": pools,
        },
    }


def settings_value(cfg: StackConfig) -> str:
    """contract.INSTANCE_SETTINGS: :func:`settings` as compact JSON."""
    return json.dumps(settings(cfg), separators=(",", ":"), sort_keys=True)

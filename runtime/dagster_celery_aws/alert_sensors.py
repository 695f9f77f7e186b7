"""The built-in alerts code location (``dagster_celery_aws_alerts``): sensors the daemon evaluates, for every code
location of the deployment, without a line in the user's code (dagster_celery_aws.alerts says what they send
where). Only the kinds on (``DCA_ALERTS``) are defined; each starts running by default.

- run failure: Dagster's run failure sensor over all code locations; its cursor is kept with its ticks;
- long run: runs in STARTED for longer than the limit;
- tick failure: a schedule or sensor whose ticks fail, once per failing streak (again after a good tick);
- code location error: each other location of the workspace loaded in a fresh code server, as the daemon does.
"""

from __future__ import annotations

import os
import sys
import time

import dagster as dg

from dagster_celery_aws import alerts

RUNNING = dg.DefaultSensorStatus.RUNNING


def _run_failure(interval: int):
    @dg.run_failure_sensor(
        name="alert_run_failure", monitor_all_code_locations=True, default_status=RUNNING,
        minimum_interval_seconds=interval, description="Publishes each failed run (dagster_celery_aws.alerts).",
    )  # fmt: skip
    def alert_run_failure(context: dg.RunFailureSensorContext):
        steps = [(e.step_key, alerts.root_message(e.step_failure_data.error)) for e in context.get_step_failure_events()]
        alerts.send(context.instance, alerts.run_failure(context.dagster_run, steps, context.failure_event.message))

    return alert_run_failure


def _long_run(interval: int):
    @dg.sensor(name="alert_long_run", default_status=RUNNING, minimum_interval_seconds=interval,
               description="Publishes each run that runs longer than the limit (dagster_celery_aws.alerts).")  # fmt: skip
    def alert_long_run(context: dg.SensorEvaluationContext):
        limit, now, sent = alerts.long_run_seconds(), time.time(), 0
        for record in context.instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
            started = record.start_time
            if started is not None and now - started > limit:
                sent += alerts.send(context.instance, alerts.long_run(record.dagster_run, started, limit, now))
        return dg.SkipReason(f"{sent} run(s) over {limit} s reported")

    return alert_long_run


def _tick_failure(interval: int):
    from dagster._core.definitions.run_request import InstigatorType
    from dagster._core.scheduler.instigation import TickStatus

    @dg.sensor(name="alert_tick_failure", default_status=RUNNING, minimum_interval_seconds=interval,
               description="Publishes each failed schedule or sensor tick (dagster_celery_aws.alerts).")  # fmt: skip
    def alert_tick_failure(context: dg.SensorEvaluationContext):
        now = time.time()
        # First look: from now on (history is not news). Then from the last look, with a margin for ticks
        # written late; the claims drop what was already reported.
        after = float(context.cursor) - 60 if context.cursor else now
        sent = 0
        for state in context.instance.all_instigator_state():
            ticks = context.instance.get_ticks(state.instigator_origin_id, state.selector_id, after=after)
            if not ticks:
                continue
            # One alert per failing streak: a schedule that fails every minute is one event until it recovers.
            key = f"tick_failure/{state.selector_id}"
            failed = [t for t in ticks if t.status == TickStatus.FAILURE]
            if failed:
                repository = state.origin.repository_origin
                kind = "schedule" if state.instigator_type == InstigatorType.SCHEDULE else "sensor"
                error = alerts.root_message(failed[0].error)
                sent += alerts.send(context.instance, alerts.tick_failure(
                    kind, state.instigator_name, repository.code_location_origin.location_name,
                    repository.repository_name, key, error,
                ))  # fmt: skip
            if ticks[0].status in (TickStatus.SUCCESS, TickStatus.SKIPPED):  # newest first: recovered
                alerts.release(context.instance, key)
        context.update_cursor(str(now))
        return dg.SkipReason(f"{sent} failed tick(s) reported")

    return alert_tick_failure


def _location_error(interval: int):
    from dagster._core.workspace.load import location_origins_from_yaml_paths
    from dagster._utils.error import serializable_error_info_from_exc_info

    @dg.sensor(name="alert_location_error", default_status=RUNNING, minimum_interval_seconds=interval * 10,
               description="Publishes each code location that does not load (dagster_celery_aws.alerts).")  # fmt: skip
    def alert_location_error(context: dg.SensorEvaluationContext):
        workspace = os.environ.get(alerts.WORKSPACE_VAR, "workspace.yaml")
        sent = 0
        for origin in location_origins_from_yaml_paths([workspace]):
            name = origin.location_name
            if name == alerts.LOCATION_NAME:
                continue
            try:
                with origin.create_single_location(context.instance):
                    pass
            except Exception:  # noqa: BLE001 - any load failure is the news
                error = serializable_error_info_from_exc_info(sys.exc_info())
                sent += alerts.send(context.instance, alerts.location_error(name, alerts.root_message(error)))
            else:  # loads again: a later failure is news again
                alerts.release(context.instance, f"location_error/{name}/", prefix=True)
        return dg.SkipReason(f"{sent} code location error(s) reported")

    return alert_location_error


def definitions() -> dg.Definitions:
    interval = alerts.interval_seconds()
    makers = {"run_failure": _run_failure, "long_run": _long_run, "tick_failure": _tick_failure,
              "location_error": _location_error}  # fmt: skip
    return dg.Definitions(sensors=[makers[kind](interval) for kind in alerts.enabled_kinds()])


defs = definitions()

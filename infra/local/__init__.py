"""The local runner: the stack's topology as processes on this machine (``python -m infra.local up``).
Imports infra.stackfile and infra.specs; never infra.aws or infra.tools.

It reads a stack file with :mod:`infra.stackfile.config`, takes every command from :func:`infra.specs.topology.process_specs`
and runs the webserver, the daemon and one Celery worker per queue, with the image's runtime files
(``worker_image/``, and the runtime package's ``celery_config.yaml``) changed only where there is no AWS here:

- every process gets runs mode ``daemon`` (``DCA_RUNS_MODE``), so the image's run launcher starts runs as
  subprocesses of the daemon's code server instead of ECS tasks (as ``runs.mode: daemon`` does on AWS); the
  instance config is ``worker_image/dagster.yaml`` with, when no database URL is given, ``storage`` replaced
  by sqlite under the state dir;
- backing services are embedded unless URLs are given: a ``filesystem://`` Celery broker, sqlite storage
  and a moto S3 API server on 127.0.0.1 (``services.py``);
- the only argv change is the webserver's bind address and port (``processes.local_argv``).

Modules: ``options`` (flags and their environment variables), ``services`` (backing services, connectivity
checks), ``runtime_files`` (the app dir and DAGSTER_HOME under the state dir), ``processes`` (process groups,
logs, status lines, shutdown), ``jobs`` (queue check, submission, the per-step report with failed steps'
errors), ``graphql`` (the UI's launch mutations), ``launch`` (what ``--job``/``--select``/``--partition``/
``--backfill``/``--tag`` ask, sent through ``graphql``), ``runner`` (the order of it all).
"""

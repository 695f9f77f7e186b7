"""Where a trivial step's time goes inside a Celery worker: profile the ``execute_plan`` task with pyinstrument.

    pip install pyinstrument        # for the profile only; not a dependency of the project or the image
    python benchmarks/profile_step.py [--steps 20] [--html out.html]

Same services and runtime files as benchmarks/step_path.py (private vhost, private database, moto S3), no
worker processes: one run of ``bench_fan40_celery`` is created, then the worker app's registered
``execute_plan`` task (``dagster_celery.app`` with the runtime's dagster_celery_config loaded and the
worker's start-up imports done, so the deployment's task, whichever it is) runs its steps here, with the message arguments the executor sends
(dagster_celery.executor._submit_task). The first step warms the process up (as a worker's pool child is
after its first task); the next ``--steps`` are timed one by one and profiled together.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

from step_path import CODE_MODULE, REPO_ROOT, Environment, say  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--html", default=None, help="also write pyinstrument's HTML report here")
    a = p.parse_args()
    from pyinstrument import Profiler

    args = SimpleNamespace(broker_url=None, database_url=None, s3_endpoint=None, workers=0, concurrency=1, rtt_ms=0)
    with tempfile.TemporaryDirectory(prefix="dca-profile-") as state, Environment(args, Path(state)) as env:
        from dagster._core.definitions.reconstruct import ReconstructableRepository
        from dagster._core.execution.api import create_execution_plan
        from dagster._core.execution.retries import RetryMode
        from dagster._grpc.types import ExecuteStepArgs
        from dagster._serdes import pack_value
        from dagster_celery.app import app

        app.loader.import_default_modules()  # as a worker does at start-up (dagster_celery_config hooks it)
        task = app.tasks["execute_plan"]
        say(f"execute_plan task: {type(task).__module__}.{type(task).__qualname__} ({task.run.__module__})")
        repo = ReconstructableRepository.for_module(CODE_MODULE, "defs", working_directory=str(REPO_ROOT))
        recon = repo.get_reconstructable_job("bench_fan40_celery")
        job_def = recon.get_definition()
        plan = create_execution_plan(recon)
        run = env.instance.create_run_for_job(job_def=job_def, execution_plan=plan, run_config={})

        def kwargs(step_key: str) -> dict:
            args = ExecuteStepArgs(
                job_origin=recon.get_python_origin(), run_id=run.run_id, step_keys_to_execute=[step_key],
                instance_ref=env.instance.get_ref(), retry_mode=RetryMode.DISABLED, known_state=None,
                print_serialized_events=True,
            )  # fmt: skip
            return {"execute_step_args_packed": pack_value(args), "executable_dict": recon.to_dict()}

        def one(step_key: str) -> float:
            t = time.perf_counter()
            result = task.apply(kwargs=kwargs(step_key), throw=True)
            assert result.successful(), result.result
            return time.perf_counter() - t

        say(f"first step (cold process): {one('step_0'):.3f} s")
        profiler = Profiler(interval=0.0005)
        times = []
        profiler.start()
        for i in range(1, a.steps + 1):
            times.append(one(f"step_{i}"))
        profiler.stop()
        say(f"next {a.steps} steps: median {statistics.median(times) * 1000:.0f} ms, "
            f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")  # fmt: skip
        say(profiler.output_text(unicode=False, color=False, show_all=True))
        if a.html:
            Path(a.html).write_text(profiler.output_html())
    return 0


if __name__ == "__main__":
    sys.exit(main())

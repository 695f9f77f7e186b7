"""Benchmark jobs of the step path (benchmarks/step_path.py): one job per (shape, executor).

Shapes:
- ``fan<N>``: N trivial steps (each returns its index) and a ``join`` that checks the N values;
- ``chain<N>``: N trivial steps, each waiting for the one before (one step in flight at a time: the time
  from "submitted" to STEP_START is dispatch latency, not waiting for a free slot);
- ``sleep<N>x<S>``: N steps that each sleep S seconds, and a join (wall time against the ideal);
- ``cold``: one trivial step on queue ``bench-cold``, which only the cold-start probe's fresh worker consumes.

Executors: ``inprocess`` (one slot), ``multiprocess`` (slots from run config ``max_concurrent``) and
``celery`` (this deployment's executor: slots = the workers' ``-c`` on queue ``dagster``). Every job
uses the deployment's S3 pickle I/O manager, so each executor pays the same storage cost per step.
Job names: ``bench_<shape>_<executor>``, e.g. ``bench_fan40_celery``.
"""

import time

from dagster import Definitions, In, in_process_executor, job, multiprocess_executor, op
from dagster_celery_aws import celery_executor, deployment_resources

QUEUE_TAG = "dagster-celery/queue"
COLD_QUEUE = "bench-cold"
FAN_SIZES = (40, 200)
CHAIN_SIZE = 10
SLEEP_STEPS, SLEEP_SECONDS = 8, 2.0
EXECUTORS = {
    "inprocess": in_process_executor,
    "multiprocess": multiprocess_executor,
    "celery": celery_executor,
}


def _trivial(name: str, with_input: bool = False, tags: dict | None = None):
    if with_input:

        @op(name=name, tags=tags)
        def after(previous: int) -> int:
            return previous + 1

        return after

    index = int(name.rsplit("_", 1)[1]) if name[-1].isdigit() else 0

    @op(name=name, tags=tags)
    def first() -> int:
        return index

    return first


def _join(name: str, expected: list[int]):
    @op(name=name, ins={"values": In(list[int])})
    def join(values: list[int]) -> int:
        assert sorted(values) == expected, f"expected {len(expected)} values, got {len(values)}"
        return len(values)

    return join


def _sleeper(index: int):
    @op(name=f"sleep_{index}")
    def sleeper() -> int:
        time.sleep(SLEEP_SECONDS)
        return index

    return sleeper


STEPS = {i: _trivial(f"step_{i}") for i in range(max(FAN_SIZES))}
LINKS = [_trivial("link_0")] + [_trivial(f"link_{i}", with_input=True) for i in range(1, CHAIN_SIZE)]
SLEEPERS = [_sleeper(i) for i in range(SLEEP_STEPS)]
COLD = _trivial("cold_0", tags={QUEUE_TAG: COLD_QUEUE})


def _fan_job(n: int, executor_name: str):
    join = _join(f"join_{n}", list(range(n)))

    @job(name=f"bench_fan{n}_{executor_name}", executor_def=EXECUTORS[executor_name])
    def fan():
        join([STEPS[i]() for i in range(n)])

    return fan


def _chain_job(executor_name: str):
    @job(name=f"bench_chain{CHAIN_SIZE}_{executor_name}", executor_def=EXECUTORS[executor_name])
    def chain():
        value = LINKS[0]()
        for link in LINKS[1:]:
            value = link(value)

    return chain


def _sleep_job(executor_name: str):
    join = _join("join_sleep", list(range(SLEEP_STEPS)))
    name = f"bench_sleep{SLEEP_STEPS}x{SLEEP_SECONDS:g}_{executor_name}"

    @job(name=name, executor_def=EXECUTORS[executor_name])
    def sleep():
        join([s() for s in SLEEPERS])

    return sleep


@job(name="bench_cold_celery", executor_def=celery_executor)
def cold_job():
    COLD()


JOBS = [
    *(_fan_job(n, e) for n in FAN_SIZES for e in EXECUTORS),
    *(_chain_job(e) for e in EXECUTORS),
    *(_sleep_job(e) for e in EXECUTORS),
    cold_job,
]

defs = Definitions(jobs=JOBS, resources=deployment_resources())

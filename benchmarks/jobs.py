"""Benchmark jobs of the step path (benchmarks/step_path.py): one job per (shape, executor).

Shapes:
- ``fan<N>``: N trivial steps (each returns its index: a few bytes stored) and a ``join`` that checks the N
  values (N in ``FAN_SIZES``);
- ``fan<N>out<size>``: the same fan-out whose N steps each return ``size`` bytes (``OUTPUT_SIZES``; ``0``:
  no output at all -- a ``Nothing`` output, nothing stored, the join only waits), and a join that checks them;
- ``chain<N>``: N trivial steps, each waiting for the one before (one step in flight at a time: the time
  from "submitted" to STEP_START is dispatch latency, not waiting for a free slot);
- ``chains<C>x<L>``: C independent chains of L steps each (a wide chain: more chains than slots);
- ``diamond``: ``top`` -> ``left`` and ``right`` -> ``bottom``, which takes both;
- ``sleep<N>x<S>``: N steps that each sleep S seconds, and a join (wall time against the ideal);
- ``cold``: one trivial step on queue ``bench-cold``, which only the cold-start probe's fresh worker consumes.

Executors: ``inprocess`` (one slot), ``multiprocess`` (slots from run config ``max_concurrent``) and
``celery`` (this deployment's executor: slots = the workers' ``-c`` on queue ``dagster``). Every job
uses the deployment's S3 pickle I/O manager, so each executor pays the same storage cost per step.
Job names: ``bench_<shape>_<executor>``, e.g. ``bench_fan20_celery``, ``bench_fan20out100k_inprocess``.
"""

import time

from dagster import Definitions, In, Nothing, Out, in_process_executor, job, multiprocess_executor, op
from dagster_celery_aws import celery_executor, deployment_resources

QUEUE_TAG = "dagster-celery/queue"
COLD_QUEUE = "bench-cold"
FAN_SIZES = (20, 40, 100, 500)  # 40: the size tests/test_fast_task.py and profile_step.py use
SIZED_FAN = 20  # the fan-out whose steps return OUTPUT_SIZES bytes each
OUTPUT_SIZES = {"0": 0, "1k": 1024, "100k": 100 * 1024, "1m": 1024 * 1024}  # shape suffix -> bytes
CHAIN_SIZE = 10
CHAINS, CHAIN_LENGTH = 4, 5
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


def _sized(name: str, size: int):
    """A step that returns ``size`` bytes (made in the step, as a real step makes its output), or, for size 0,
    nothing: a ``Nothing`` output, which no I/O manager stores."""
    if size == 0:

        @op(name=name, out=Out(Nothing))
        def nothing() -> None:
            return None

        return nothing

    @op(name=name)
    def sized() -> bytes:
        return bytes(size)

    return sized


def _sized_join(name: str, n: int, size: int):
    if size == 0:

        @op(name=name, ins={"after": In(Nothing)})
        def join_nothing() -> int:
            return n

        return join_nothing

    @op(name=name, ins={"values": In(list[bytes])})
    def join_sized(values: list[bytes]) -> int:
        assert [len(v) for v in values] == [size] * n, f"expected {n} outputs of {size} bytes"
        return n

    return join_sized


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


def _sized_fan_job(suffix: str, executor_name: str):
    n, size = SIZED_FAN, OUTPUT_SIZES[suffix]
    steps = [_sized(f"out{suffix}_{i}", size) for i in range(n)]
    join = _sized_join(f"join_out{suffix}", n, size)

    @job(name=f"bench_fan{n}out{suffix}_{executor_name}", executor_def=EXECUTORS[executor_name])
    def sized_fan():
        outputs = [s() for s in steps]
        if size == 0:
            join(after=outputs)
        else:
            join(outputs)

    return sized_fan


def _chain_job(executor_name: str):
    @job(name=f"bench_chain{CHAIN_SIZE}_{executor_name}", executor_def=EXECUTORS[executor_name])
    def chain():
        value = LINKS[0]()
        for link in LINKS[1:]:
            value = link(value)

    return chain


def _chains_job(executor_name: str):
    heads = [_trivial(f"c{c}_link_0") for c in range(CHAINS)]
    tails = [[_trivial(f"c{c}_link_{i}", with_input=True) for i in range(1, CHAIN_LENGTH)] for c in range(CHAINS)]

    @job(name=f"bench_chains{CHAINS}x{CHAIN_LENGTH}_{executor_name}", executor_def=EXECUTORS[executor_name])
    def chains():
        for c in range(CHAINS):
            value = heads[c]()
            for link in tails[c]:
                value = link(value)

    return chains


@op
def top() -> int:
    return 1


@op
def left(value: int) -> int:
    return value + 1


@op
def right(value: int) -> int:
    return value + 2


@op
def bottom(a: int, b: int) -> int:
    assert (a, b) == (2, 3), (a, b)
    return a + b


def _diamond_job(executor_name: str):
    @job(name=f"bench_diamond_{executor_name}", executor_def=EXECUTORS[executor_name])
    def diamond():
        value = top()
        bottom(left(value), right(value))

    return diamond


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
    *(_sized_fan_job(s, e) for s in OUTPUT_SIZES for e in EXECUTORS),
    *(_chain_job(e) for e in EXECUTORS),
    *(_chains_job(e) for e in EXECUTORS),
    *(_diamond_job(e) for e in EXECUTORS),
    *(_sleep_job(e) for e in EXECUTORS),
    cold_job,
]

defs = Definitions(jobs=JOBS, resources=deployment_resources())

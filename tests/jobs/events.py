"""A code location for tests/test_fast_task.py's event-write tests: user code that looks, while it runs, at what
its step has stored in the run's event log.

Each piece of user code appends ``(where, type of the run's last stored event)`` to ``SEEN`` (the test runs the
steps in its own process): a resource as it is built (``witness``), the I/O manager as it handles an output,
a plain op's body, a generator op's body after its first output. What it sees is what a worker killed at that
moment would have left in the log.

- ``witnessed``: ``plain`` (returns one value) and ``generator`` (yields two outputs), both with ``witness``;
- ``broken_job``: ``needs_broken``, whose resource ``broken`` raises as it is built, and ``fails``, whose body
  raises.
"""

from dagster import Definitions, InitResourceContext, IOManager, Out, Output, io_manager, job, op, resource

SEEN: list[tuple[str, str]] = []


def _last_stored(instance, run_id: str) -> str:
    entry = instance.all_logs(run_id)[-1]
    return entry.dagster_event.event_type_value if entry.dagster_event else "LOG"


@resource
def witness(context: InitResourceContext) -> str:
    SEEN.append(("resource init", _last_stored(context.instance, context.run.run_id)))
    return "witness"


class _WitnessIOManager(IOManager):
    def __init__(self, instance):
        self.instance = instance

    def handle_output(self, context, obj) -> None:
        SEEN.append((f"handle_output {context.step_key}", _last_stored(self.instance, context.run_id)))

    def load_input(self, context):  # pragma: no cover - the tests run steps without inputs
        raise NotImplementedError


@io_manager
def witness_io(context: InitResourceContext) -> _WitnessIOManager:
    return _WitnessIOManager(context.instance)


@op(required_resource_keys={"witness"})
def plain(context) -> int:
    SEEN.append(("plain body", _last_stored(context.instance, context.run_id)))
    return 1


@op(required_resource_keys={"witness"}, out={"first": Out(int), "second": Out(int)})
def generator(context):
    yield Output(1, "first")
    SEEN.append(("generator body after an output", _last_stored(context.instance, context.run_id)))
    yield Output(2, "second")


@job(resource_defs={"witness": witness, "io_manager": witness_io})
def witnessed():
    plain()
    generator()


@resource
def broken(_context) -> None:
    raise RuntimeError("this resource cannot be built")


@op(required_resource_keys={"broken"})
def needs_broken() -> None:  # pragma: no cover - its resource fails first
    pass


@op
def fails() -> None:
    raise RuntimeError("this op fails")


@job(resource_defs={"broken": broken})
def broken_job():
    needs_broken()
    fails()


defs = Definitions(jobs=[witnessed, broken_job])

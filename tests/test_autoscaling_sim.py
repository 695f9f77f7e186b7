"""The autoscaling simulation's scale-from-zero path: the step that wakes an empty queue starts one task and
waits for the publisher's data point, the wake alarm and the task's start -- no longer."""

from benchmarks.autoscaling_sim import START_DELAY, TICK, simulate
from infra.stackfile.config import Queue


def test_a_step_on_an_empty_queue_wakes_one_worker_and_waits_only_for_its_start():
    queue = Queue(name="dagster", min_workers=0, max_workers=3)
    result = simulate(queue, [(125, 30), (4 * 3600, 30)])  # two lone steps, hours apart: each wakes the queue
    assert result.from_zero == 2
    # The next minute's data point (<= 60 s), the task start; the queue is back at zero in between (idleMinutes).
    assert START_DELAY <= result.from_zero_mean_wait <= result.from_zero_max_wait <= 60 + START_DELAY
    assert result.worker_hours < 2  # woken twice for minutes each time, not kept up for the hours between


def test_a_queue_with_a_warm_worker_never_starts_from_zero():
    result = simulate(Queue(name="dagster", min_workers=1, max_workers=3), [(125, 30)])
    assert result.from_zero == 0 and result.max_wait <= 10  # the warm worker takes it at the next tick


def test_pre_warming_leaves_a_cold_queues_first_step_only_the_task_start():
    queue = Queue(name="dagster", min_workers=0, max_workers=3)
    trace = [(125, 30), (4 * 3600 + 5, 30)]  # two lone steps, hours apart, off the minute: each wakes the queue
    before, after = simulate(queue, trace), simulate(queue, trace, prewarm=True)
    assert before.from_zero == after.from_zero == 2
    # The task start and the tick that sees it ready: no data point, no alarm period.
    assert START_DELAY <= after.from_zero_mean_wait <= after.from_zero_max_wait <= START_DELAY + TICK
    assert after.from_zero_max_wait < before.from_zero_max_wait and after.from_zero_mean_wait < before.from_zero_mean_wait
    assert after.worker_hours < 2  # the idle policy still scales it back to zero in between

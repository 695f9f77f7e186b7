"""Simulate each queue's autoscaling policy over a bursty arrival trace, against fixed provisioning at
``maxWorkers``: worker-hours paid and how long steps wait.

Deterministic (seeded trace, 10-second ticks), with the stack file's own parameters and the rules of
``infra/aws/scaling.py``:
- metrics are published every 60 s: depth = waiting + running steps, consumers = running worker tasks;
- backlog (target tracking, scale out only): after 3 consecutive minutes with messages per slot above the
  target (the AWS-managed alarm's default), desired = ceil(tasks x metric / target), then the cooldown;
- wake (minWorkers 0): one minute with messages and no consumer -> exactly one task;
- idle: depth 0 for ``idleMinutes`` -> exactly ``minWorkers``; a task with a running step is never stopped
  (ECS scale-in protection), and depth 0 means nothing runs;
- a new task consumes 90 s after it is asked for (Fargate start and image pull, cached).

Time to first step from zero: the wait of each step that arrives while its queue has no task at all (asked for
or running) and nothing waiting -- the step that wakes it: the publisher's next data point (up to 60 s), the
wake alarm's one-minute period, the task start. With plan-aware pre-warming (``prewarm``: the run asks for the
task as it starts) only the task start.

    python benchmarks/autoscaling_sim.py [--stack-file Pulumi.dev.yaml ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.stackfile.config import Queue, load_stack_file  # noqa: E402

TICK = 10
START_DELAY = 90
HOURS = 24
SEED = 7


def bursty_trace(hours: int = HOURS, seed: int = SEED) -> list[tuple[int, int]]:
    """(arrival second, duration seconds): a burst of 40-80 steps of 1-6 min every 3 h, sparse steps between."""
    rng = random.Random(seed)
    steps = []
    for burst_start in range(1800, hours * 3600, 3 * 3600):
        for _ in range(rng.randint(40, 80)):
            steps.append((burst_start + rng.randint(0, 300), rng.randint(60, 360)))
    t = 0
    while t < hours * 3600:
        t += int(rng.expovariate(1 / 1200))
        steps.append((t, rng.randint(30, 120)))
    return sorted(s for s in steps if s[0] < hours * 3600)


@dataclass
class Result:
    worker_hours: float
    mean_wait: float
    p95_wait: float
    max_wait: float
    from_zero: int = 0  # wake-ups: steps that arrived at a queue with no task and nothing waiting
    from_zero_mean_wait: float = 0.0
    from_zero_max_wait: float = 0.0


def simulate(q: Queue, trace: list[tuple[int, int]], autoscale: bool = True, prewarm: bool = False) -> Result:
    """``prewarm``: the run asks for a task of its cold queue as it starts (dagster_celery_aws.prewarm), taken here
    as the moment its step arrives (a run starts before it sends its first step: no later than that)."""
    s = q.scaling
    desired = q.min_workers if autoscale else q.max_workers
    ready_at: list[int] = [0] * desired  # when each live task starts consuming
    busy: list[tuple[int, int]] = []  # heap of (finish time, task index)
    waiting: list[tuple[int, int, int]] = []  # (arrival, duration, index in the trace), FIFO
    slots_used: dict[int, int] = {}
    waits, worker_seconds = [], 0
    cold: set[int] = set()  # steps that woke their queue (by index: two steps may share arrival and duration)
    cold_waits: list[int] = []
    above, idle_minutes, cooldown_until = 0, 0, 0
    pending = [(arrival, duration, i) for i, (arrival, duration) in enumerate(trace)]
    end = HOURS * 3600 + 3600
    for now in range(0, end, TICK):
        while pending and pending[0][0] <= now:
            if not ready_at and not waiting:  # the step that wakes the queue
                cold.add(pending[0][2])
                if prewarm and autoscale:  # desired 0 -> 1 at once, no metric nor alarm to wait for
                    desired = max(desired, 1)
                    ready_at.append(now + START_DELAY)
            waiting.append(pending.pop(0))
        while busy and busy[0][0] <= now:
            _, task = heapq.heappop(busy)
            slots_used[task] -= 1
        for task, ready in enumerate(ready_at):  # free slots take waiting steps, oldest first
            while waiting and ready <= now and slots_used.get(task, 0) < q.concurrency:
                arrival, duration, index = waiting.pop(0)
                waits.append(now - arrival)
                if index in cold:
                    cold_waits.append(now - arrival)
                slots_used[task] = slots_used.get(task, 0) + 1
                heapq.heappush(busy, (now + duration, task))
        worker_seconds += len(ready_at) * TICK
        if not autoscale or now % 60:
            continue
        running = len(busy)
        depth = len(waiting) + running
        consumers = sum(1 for r in ready_at if r <= now)
        metric = depth / max(consumers, 1) / q.concurrency
        above = above + 1 if consumers and metric > s.target_messages_per_slot else 0
        idle_minutes = idle_minutes + 1 if depth == 0 else 0
        if q.min_workers == 0 and depth and not consumers and not ready_at:
            desired = 1
        elif above >= 3 and now >= cooldown_until:
            desired = min(q.max_workers, max(desired, math.ceil(len(ready_at) * metric / s.target_messages_per_slot)))
            cooldown_until = now + s.scale_out_cooldown_seconds
        if idle_minutes >= s.idle_minutes:
            desired = q.min_workers
        while len(ready_at) < desired:
            ready_at.append(now + START_DELAY)
        while len(ready_at) > desired and slots_used.get(len(ready_at) - 1, 0) == 0:
            ready_at.pop()
    waits.sort()
    return Result(
        worker_hours=worker_seconds / 3600,
        mean_wait=sum(waits) / len(waits),
        p95_wait=waits[int(0.95 * (len(waits) - 1))],
        max_wait=waits[-1],
        from_zero=len(cold_waits),
        from_zero_mean_wait=sum(cold_waits) / len(cold_waits) if cold_waits else 0.0,
        from_zero_max_wait=max(cold_waits, default=0),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack-file", action="append", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    files = args.stack_file or [root / "Pulumi.dev.yaml", root / "Pulumi.prod.yaml"]
    trace = bursty_trace()
    rows = []
    print(f"Trace: {len(trace)} steps over {HOURS} h (seed {SEED}); waits in seconds.\n")
    print("| stack | queue | min..max x slots | worker-hours auto / fixed | saved | wait mean auto / fixed | wait p95 auto / fixed | wait max auto | from zero: wake-ups, first-step wait mean / max | the same, pre-warmed | worker-hours pre-warmed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path in files:
        cfg = load_stack_file(path)
        for q in cfg.queues:
            auto, fixed = simulate(q, trace), simulate(q, trace, autoscale=False)
            warm = simulate(q, trace, prewarm=True)
            rows.append({"stack": path.name, "queue": q.name, "auto": auto.__dict__, "fixed": fixed.__dict__,
                         "prewarmed": warm.__dict__})  # fmt: skip
            print(f"| {path.name} | {q.name} | {q.min_workers}..{q.max_workers} x {q.concurrency} | "
                  f"{auto.worker_hours:.1f} / {fixed.worker_hours:.1f} | {1 - auto.worker_hours / fixed.worker_hours:.0%} | "
                  f"{auto.mean_wait:.0f} / {fixed.mean_wait:.0f} | {auto.p95_wait:.0f} / {fixed.p95_wait:.0f} | {auto.max_wait:.0f} | "
                  + (f"{auto.from_zero}, {auto.from_zero_mean_wait:.0f} / {auto.from_zero_max_wait:.0f} | "
                     f"{warm.from_zero}, {warm.from_zero_mean_wait:.0f} / {warm.from_zero_max_wait:.0f} |" if q.min_workers == 0 else "- | - |")
                  + f" {warm.worker_hours:.1f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

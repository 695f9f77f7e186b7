"""Fargate task sizes: which cpu/memory pairs ECS accepts.

Source: ECS developer guide, "task-cpu-memory-error" (docs/facts.md): each cpu value allows a
range of memory values in fixed steps. Used by the stack config (every task's size) and by the run launcher (a
run's ``ecs/cpu`` and ``ecs/memory`` tags).
"""

from __future__ import annotations

# cpu units -> (lowest MiB, highest MiB, step MiB); 256 cpu is the odd one (512, 1024, 2048).
_MEMORY_RANGES: dict[int, tuple[int, int, int]] = {
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}


def valid_memory(cpu: int) -> tuple[int, ...]:
    """The memory values (MiB) Fargate accepts with ``cpu`` units; empty if the cpu value is not valid."""
    if cpu == 256:
        return (512, 1024, 2048)
    if cpu not in _MEMORY_RANGES:
        return ()
    low, high, step = _MEMORY_RANGES[cpu]
    return tuple(range(low, high + 1, step))


VALID_CPU = (256, *_MEMORY_RANGES)


def size_error(cpu: int, memory: int) -> str | None:
    """Why ``cpu``/``memory`` is not a Fargate size, or None when it is one."""
    if cpu not in VALID_CPU:
        return f"cpu {cpu} is not a Fargate cpu value; valid: {', '.join(map(str, VALID_CPU))}"
    allowed = valid_memory(cpu)
    if memory not in allowed:
        shown = ", ".join(map(str, allowed)) if len(allowed) <= 4 else f"{allowed[0]}-{allowed[-1]} in steps of {allowed[1] - allowed[0]}"
        return f"memory {memory} MiB does not go with cpu {cpu}; valid memory for cpu {cpu}: {shown}"
    return None

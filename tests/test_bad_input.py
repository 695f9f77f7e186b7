"""Bad input is refused before anything is touched, by both consumers of a stack file: the Pulumi program
(``pulumi up``, under mocks) and the local runner. Random valid configs always give a consistent resource
graph; random invalid ones are always refused."""

from __future__ import annotations

import pulumi
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.stackfile.config import ConfigError, parse
from infra.local.__main__ import main as local_main
from infra.tools.testing import run_stack
from tests.test_config import INVALID

FILE_ONLY = [  # (stack file text, words): broken before any key is read
    ("", ["config:"]),
    ("config: [\n", ["not valid YAML"]),
    ("just text\n", ["config:"]),
    ("config:\n  dagster-celery-aws:queues: 3\n", ["queues"]),
]


def write(tmp_path, values: dict) -> str:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(yaml.safe_dump({"config": {f"dagster-celery-aws:{k}": v for k, v in values.items()}}))
    return str(path)


@pytest.mark.parametrize("values, words", INVALID)
def test_pulumi_program_refuses_before_declaring_anything(tmp_path, values, words):
    with pytest.raises(pulumi.RunError) as err:
        result = run_stack(write(tmp_path, values))
        assert not result.resources  # unreachable when refused; says what a pass would mean
    for word in words:
        assert word in str(err.value), f"{word!r} missing from: {err.value}"


@pytest.mark.parametrize("values, words", INVALID)
def test_local_runner_refuses_before_starting_anything(tmp_path, capsys, values, words):
    state = tmp_path / "state"
    code = local_main(["up", "--once", "--stack-file", write(tmp_path, values), "--state-dir", str(state)])
    out = capsys.readouterr()
    assert code == 2
    for word in words:
        assert word in out.out + out.err, f"{word!r} missing from: {out.out + out.err}"
    assert "Traceback" not in out.out + out.err
    assert not state.exists()  # nothing started, nothing written


@pytest.mark.parametrize("text, words", FILE_ONLY)
def test_broken_stack_files_are_refused_by_both(tmp_path, capsys, text, words):
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(text)
    assert local_main(["up", "--once", "--stack-file", str(path), "--state-dir", str(tmp_path / "s")]) == 2
    out = capsys.readouterr()
    assert all(w in out.out + out.err for w in words), out
    assert not (tmp_path / "s").exists()


def test_at_least_forty_bad_inputs_are_tried():
    assert len(INVALID) + len(FILE_ONLY) >= 40


# --- property-based -------------------------------------------------------------------------------------

FARGATE = [(256, 512), (256, 2048), (512, 1024), (512, 4096), (1024, 2048), (2048, 8192), (4096, 16384)]
names = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True).filter(lambda n: n != "dagster")


@st.composite
def valid_configs(draw):
    extra = draw(st.lists(names, max_size=3, unique_by=lambda n: n.replace(".", "-")))
    queues = []
    for name in ["dagster", *extra]:
        low = draw(st.integers(0, 3))
        cpu, memory = draw(st.sampled_from(FARGATE))
        queues.append({"name": name, "minWorkers": low, "maxWorkers": draw(st.integers(max(1, low), 6)),
                       "concurrency": draw(st.integers(1, 2)), "cpu": cpu, "memory": memory})  # fmt: skip
    return {"queues": draw(st.permutations(queues)), "database": {"instanceClass": "db.m7g.large"}}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_configs())
def test_random_valid_configs_give_one_bounded_service_per_queue(values):
    stack = run_stack(config=values)
    targets = {t.inputs["resourceId"].rsplit("/", 1)[-1]: t.inputs for t in stack.of_type("aws:appautoscaling/target:Target")}
    assert set(targets) == {f"worker-{q['name']}" for q in values["queues"]}
    for q in values["queues"]:
        t = targets[f"worker-{q['name']}"]
        assert (t["minCapacity"], t["maxCapacity"]) == (q["minWorkers"], q["maxWorkers"])
    services = [s.inputs["name"] for s in stack.of_type("aws:ecs/service:Service")]
    assert sorted(services) == sorted(["webserver", "daemon", *targets])


BREAKERS = [
    lambda q: q | {"maxWorkers": 0},
    lambda q: q | {"minWorkers": -1},
    lambda q: q | {"minWorkers": q["maxWorkers"] + 1},
    lambda q: q | {"concurrency": 0},
    lambda q: q | {"cpu": 300},
    lambda q: q | {"cpu": 256, "memory": 8192},
    lambda q: q | {"name": "no spaces allowed"},
    lambda q: q | {"maxworkers": 2},
    lambda q: q | {"maxWorkers": 1.5},
]


@settings(max_examples=60, deadline=None)
@given(valid_configs(), st.sampled_from(BREAKERS), st.integers(0, 3))
def test_random_invalid_configs_are_always_refused_naming_the_queue(values, breaker, index):
    queues = list(values["queues"])
    i = index % len(queues)
    queues[i] = breaker(queues[i])
    with pytest.raises(ConfigError) as err:
        parse({**values, "queues": queues})
    assert f"queues[{i}]" in str(err.value)

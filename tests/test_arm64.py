"""Graviton: `image.platform` decides both the platform the image is built for and the CPU architecture of every
ECS task definition, so an arm64 image never lands on x86_64 tasks (or the other way round). Offline: the
Pulumi program under recording mocks; the wheel coverage for linux/arm64 is in docs/deployment.md, "Graviton (ARM64)"."""

from __future__ import annotations

import pytest

from infra.tools.testing import run_stack

IMAGE = "docker-build:index:Image"
TASKDEF = "aws:ecs/taskDefinition:TaskDefinition"
CASES = [(None, "X86_64"), ("linux/amd64", "X86_64"), ("linux/arm64", "ARM64")]  # None: the default, amd64


@pytest.mark.parametrize(("platform", "architecture"), CASES)
def test_image_platform_is_the_build_platform_and_every_task_architecture(platform, architecture):
    image = {"platform": platform} if platform else {}
    stack = run_stack(config={"queues": [{"name": "dagster"}, {"name": "heavy"}], "image": image})
    (built,) = stack.of_type(IMAGE)
    assert built.inputs["platforms"] == [platform or "linux/amd64"]
    taskdefs = stack.of_type(TASKDEF)
    assert taskdefs
    for t in taskdefs:
        assert t.inputs["runtimePlatform"] == {"operatingSystemFamily": "LINUX", "cpuArchitecture": architecture}, t.urn


def test_a_prebuilt_arm64_image_runs_on_arm64_tasks_and_nothing_is_built():
    # The way round emulation: build on an arm64 machine or runner, push, and name the image with its platform.
    uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/dagster:v1-arm64"
    stack = run_stack(config={"queues": [{"name": "dagster"}], "image": {"uri": uri, "platform": "linux/arm64"}})
    assert not stack.of_type(IMAGE)
    assert {t.inputs["runtimePlatform"]["cpuArchitecture"] for t in stack.of_type(TASKDEF)} == {"ARM64"}

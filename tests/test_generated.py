"""What the program generates, checked by the tools that define it: ECS task definitions against botocore's
``ecs`` service model, and no unresolved Pulumi Output anywhere in the resource graph."""

from __future__ import annotations

import json

import botocore.session
import pytest
from botocore.validate import ParamValidator

from infra.aws import iam
from infra.tools.testing import run_stack
from tests.conftest import REPO_ROOT

REGISTER = botocore.session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition")




@pytest.fixture(scope="module", params=["dev", "prod"])
def stack(request):
    return run_stack(REPO_ROOT / f"Pulumi.{request.param}.yaml", stack=request.param)


def test_every_task_definition_is_a_valid_register_task_definition_request(stack):
    taskdefs = stack.of_type("aws:ecs/taskDefinition:TaskDefinition")
    assert len(taskdefs) >= 4  # daemon (and webserver), run, a worker per queue
    for t in taskdefs:
        i = t.inputs
        request = {
            "family": i["family"],
            "containerDefinitions": json.loads(i["containerDefinitions"]),
            "cpu": i["cpu"],
            "memory": i["memory"],
            "networkMode": i["networkMode"],
            "requiresCompatibilities": i["requiresCompatibilities"],
            "executionRoleArn": i["executionRoleArn"],
            "taskRoleArn": i["taskRoleArn"],
            "runtimePlatform": i["runtimePlatform"],
        }
        report = ParamValidator().validate(request, REGISTER.input_shape)
        assert not report.has_errors(), f"{t.urn}:\n{report.generate_report()}"


def test_the_validator_rejects_a_broken_container_definition():
    broken = {"family": "x", "containerDefinitions": [{"name": "x", "image": "y", "essential": "yes"}]}
    assert ParamValidator().validate(broken, REGISTER.input_shape).has_errors()


def test_no_unresolved_output_leaks_into_any_input(stack):
    for r in stack.resources:
        assert "Calling __str__ on an Output" not in json.dumps(r.inputs, default=str), r.urn


def test_generated_iam_policies_are_scoped_json(stack):
    for policy in stack.of_type("aws:iam/rolePolicy:RolePolicy"):
        document = json.loads(policy.inputs["policy"])
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in a for a in actions), policy.urn
            if statement["Resource"] == "*":
                # Only actions AWS cannot scope to a resource.
                assert set(actions) <= {"ecs:DescribeTaskDefinition", "ec2:DescribeNetworkInterfaces",
                                        "cloudwatch:PutMetricData", *iam.ECS_EXEC_ACTIONS}, policy.urn

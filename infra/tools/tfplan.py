"""The stack as the Terraform plan JSON that checkov (and other Terraform scanners) read.

pulumi-aws is bridged from the Terraform AWS provider: every ``aws:<module>/<name>:<Name>`` type is a
Terraform resource type (``aws:ecs/taskDefinition:TaskDefinition`` is ``aws_ecs_task_definition``) with the same
arguments in camelCase, lists of nested blocks named in the plural (``defaultActions`` for ``default_action``)
and single nested blocks as objects. ``plan(stack)`` turns what ``infra.tools.testing.run_stack`` recorded into the
``terraform show -json`` document of a first ``terraform apply`` of the same resources:

- ``planned_values``: each resource's arguments, snake_case, nested blocks as lists of objects, maps (tags,
  alarm dimensions) as they are;
- an argument that is another resource's output (an ID, ARN or name the mocks computed) is unknown before the
  apply, as in a real first plan: left out of the values (``null`` inside a list), and
  ``configuration.root_module`` carries its ``references`` (``aws_s3_bucket.data.id``) -- how a scanner's graph
  links a public access block to its bucket or a web ACL association to its load balancer. Only dependencies
  the program declared (``options.dependencies``) are candidates. Values that merely embed an output (a policy
  document naming a bucket's ARN) stay known, so their content is checked.

    python -m infra.tools.tfplan --stack-file Pulumi.prod.yaml --stack prod > prod.tfplan.json
    checkov -f prod.tfplan.json --framework terraform_plan

Resources of other providers (random passwords, the image build, the config guard) have no Terraform AWS
resource and are left out.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from infra.tools import testing
from infra.tools.testing import Resource, StackResult, reveal, run_stack

PROVIDER = "registry.terraform.io/hashicorp/aws"
# Module prefixes that differ between pulumi-aws and Terraform: EC2 and VPC types carry none (aws_vpc,
# aws_subnet, aws_security_group, aws_flow_log), RDS is db_ (aws_db_instance).
MODULE_PREFIX = {"ec2": "", "rds": "db_"}
TYPE_OVERRIDES = {"aws:lb/loadBalancer:LoadBalancer": "aws_lb"}
# Nested blocks that Terraform itself names in the plural (pulumi-aws keeps the name).
PLURAL_BLOCKS = {"metrics", "dimensions"}
# Arguments that are maps, not nested blocks: their keys are data and stay as written.
MAPS = {"tags", "tags_all", "dimensions"}


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def tf_type(pulumi_type: str) -> str | None:
    """The Terraform resource type of a pulumi-aws type; None for other providers."""
    if pulumi_type in TYPE_OVERRIDES:
        return TYPE_OVERRIDES[pulumi_type]
    package, module_and_name, _ = pulumi_type.split(":")
    if package != "aws":
        return None
    module, name = module_and_name.split("/")
    return f"aws_{MODULE_PREFIX.get(module, module + '_')}{snake(name)}"


def _address_name(logical: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", logical)


def _block_name(key: str, value: Any) -> str:
    name = snake(key)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value) and name not in PLURAL_BLOCKS:
        name = name[:-3] + "y" if name.endswith("ies") else name.removesuffix("s")
    return name


def _plain(value: Any) -> Any:
    # Pulumi's wire format carries numbers as doubles.
    return int(value) if isinstance(value, float) and value.is_integer() else value


class _Outputs:
    """What each resource's outputs look like in the recording: value -> (address, attribute)."""

    def __init__(self, stack: StackResult, addresses: dict[str, str]):
        self.by_urn: dict[str, dict[str, tuple[str, str]]] = {}
        for r in stack.resources:
            if r.urn not in addresses:
                continue
            # What AWS computes (the mocks' ID, ARN, name, endpoints ...), not what the program gave.
            computed = {k: v for k, v in reveal(r.state).items() if k not in r.inputs}
            values = {"id": r.state.get("id", f"{r.name}-id"), **computed}
            self.by_urn[r.urn] = {v: (addresses[r.urn], snake(k)) for k, v in values.items() if isinstance(v, str) and v}

    def reference(self, value: Any, dependencies: list[str]) -> list[str] | None:
        if not isinstance(value, str):
            return None
        for urn in dependencies:
            hit = self.by_urn.get(urn, {}).get(value)
            if hit:
                return [f"{hit[0]}.{hit[1]}", hit[0]]
        return None


def _convert(inputs: dict, outputs: _Outputs, dependencies: list[str]) -> tuple[dict, dict]:
    """(values, expressions) of one block: known values, and references where a value is another resource's output."""
    values: dict[str, Any] = {}
    expressions: dict[str, Any] = {}
    for key, value in inputs.items():
        name = _block_name(key, value)
        if name in MAPS and isinstance(value, dict):
            values[name] = {k: _plain(v) for k, v in value.items()}
            continue
        if isinstance(value, dict):
            value = [value]  # a single nested block: a list of one in Terraform's JSON
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            blocks = [_convert(v, outputs, dependencies) for v in value]
            values[name] = [b[0] for b in blocks]
            if any(b[1] for b in blocks):
                expressions[name] = [b[1] for b in blocks]
            continue
        if isinstance(value, list):
            refs = [outputs.reference(v, dependencies) for v in value]
            values[name] = [None if ref else _plain(v) for v, ref in zip(value, refs)]
            if any(refs):
                expressions[name] = {"references": [x for ref in refs if ref for x in ref]}
            continue
        ref = outputs.reference(value, dependencies)
        if ref:
            expressions[name] = {"references": ref}  # unknown until applied: no value
        elif value is not None:
            values[name] = _plain(value)
    return values, expressions


def plan(stack: StackResult, region: str = testing.REGION) -> dict[str, Any]:
    """The ``terraform show -json`` document of a first apply of ``stack``'s AWS resources."""
    addresses: dict[str, str] = {}
    for r in stack.resources:
        typ = tf_type(r.typ)
        if typ:
            addresses[r.urn] = f"{typ}.{_address_name(r.name)}"
    outputs = _Outputs(stack, addresses)
    planned, changes, configured = [], [], []
    for r in stack.resources:
        if r.urn not in addresses:
            continue
        address = addresses[r.urn]
        typ, name = address.split(".", 1)
        values, expressions = _convert(reveal(r.inputs), outputs, list(r.options.dependencies))
        common = {"address": address, "mode": "managed", "type": typ, "name": name}
        planned.append({**common, "provider_name": PROVIDER, "schema_version": 0, "values": values, "sensitive_values": {}})
        changes.append({**common, "provider_name": PROVIDER,
                        "change": {"actions": ["create"], "before": None, "after": values, "after_unknown": {}}})  # fmt: skip
        configured.append({**common, "provider_config_key": "aws", "expressions": expressions, "schema_version": 0})
    return {
        "format_version": "1.2",
        "terraform_version": "1.9.8",
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {
            "provider_config": {"aws": {"name": "aws", "full_name": PROVIDER,
                                        "expressions": {"region": {"constant_value": region}}}},  # fmt: skip
            "root_module": {"resources": configured},
        },
    }


def unmapped(stack: StackResult) -> list[Resource]:
    """Recorded resources with no Terraform type (not pulumi-aws, not our components)."""
    return [r for r in stack.resources if tf_type(r.typ) is None and not r.typ.startswith(f"{testing.PROJECT}:")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.tools.tfplan", description=__doc__.splitlines()[0])
    parser.add_argument("--stack-file", required=True, help="Pulumi.<stack>.yaml")
    parser.add_argument("--stack", required=True, help="the Pulumi stack name (names start with dagster-<stack>)")
    args = parser.parse_args(argv)
    region = str(testing.stack_file_config(args.stack_file).get("aws:region", testing.REGION))
    print(json.dumps(plan(run_stack(Path(args.stack_file), stack=args.stack), region), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

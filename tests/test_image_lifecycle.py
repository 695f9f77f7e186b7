"""The image repository's lifecycle never expires an image a task definition names (infra/aws/components/image.py):
every such image is tagged ``deployed-<its digest>`` before the first task definition names it, and the lifecycle
selects untagged images only. The retag is checked call by call against ECR's API model (botocore's Stubber)."""

from __future__ import annotations

import json
from functools import cache

import boto3
import pytest
from botocore.stub import Stubber
from pulumi.dynamic.dynamic import serialize_provider

from infra.aws.components import image
from infra.tools.testing import run_stack
from tests.conftest import REPO_ROOT
from tests.test_guard import _in_a_process_without_this_project

DIGEST = "sha256:" + "ab" * 32
PROPS = {"repositoryName": "dagster-prod-code-repo-a1b2c3d", "digest": DIGEST, "region": "eu-west-1", "profile": ""}
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"})


@cache
def recorded(stack: str):
    return run_stack(REPO_ROOT / f"Pulumi.{stack}.yaml", stack=stack)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_image_a_task_definition_names_is_tagged_first_and_no_rule_selects_a_tagged_image(stack):
    result = recorded(stack)
    (rule,) = json.loads(result.one("aws:ecr/lifecyclePolicy:LifecyclePolicy", "-code-lifecycle").inputs["policy"])["rules"]
    # ECR: "tagStatus untagged" selects images without a tag, and nothing else (Lifecycle policy properties).
    assert rule["selection"]["tagStatus"] == "untagged" and rule["action"] == {"type": "expire"}
    tag = result.one("pulumi-python:dynamic:Resource", "-code-deployed-tag")
    images = set()
    for td in result.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        assert tag.urn in td.options.dependencies, td.urn  # tagged before the task definition is registered
        images |= {c["image"] for c in json.loads(td.inputs["containerDefinitions"])}
    assert images == {f"{result.one('aws:ecr/repository:Repository', '-code-repo').state['repositoryUrl']}@{tag.inputs['digest']}"}


def _stubbed():
    client = boto3.client("ecr", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def _get(stub):
    stub.add_response(
        "batch_get_image",
        {"images": [{"imageId": {"imageDigest": DIGEST}, "imageManifest": MANIFEST,
                     "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json"}], "failures": []},
        {"repositoryName": PROPS["repositoryName"], "imageIds": [{"imageDigest": DIGEST}],
         "acceptedMediaTypes": image.MANIFEST_MEDIA_TYPES},
    )  # fmt: skip


PUT = {"repositoryName": PROPS["repositoryName"], "imageManifest": MANIFEST, "imageDigest": DIGEST,
       "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json", "imageTag": "deployed-" + "ab" * 32}  # fmt: skip


def test_the_pushed_image_is_retagged_with_its_own_digest():
    client, stub = _stubbed()
    _get(stub)
    stub.add_response("put_image", {"image": {"imageId": {"imageDigest": DIGEST, "imageTag": PUT["imageTag"]}}}, PUT)
    with stub:
        image.tag_image(PROPS, client)
    stub.assert_no_pending_responses()


def test_an_image_tagged_already_is_done():
    client, stub = _stubbed()
    _get(stub)
    stub.add_client_error("put_image", "ImageAlreadyExistsException", expected_params=PUT)
    with stub:
        image.tag_image(PROPS, client)
    stub.assert_no_pending_responses()


def test_the_tag_fits_ecr_and_never_moves():
    tag = image.deployed_tag(DIGEST)
    assert tag == "deployed-" + "ab" * 32 and len(tag) <= 300  # ECR PutImage imageTag: 1-300 characters
    assert image.deployed_tag("sha256:" + "cd" * 32) != tag  # another image, another tag


def test_the_stored_provider_tags_without_this_projects_modules():
    # What `pulumi refresh`, `pulumi destroy` and an update run: the state's copy of the provider, with this project's
    # modules renamed or moved away. Its calls reach ECR through the stored SDK client (here a dead endpoint).
    done = _in_a_process_without_this_project(serialize_provider(image._TagProvider()), (
        f"props = {PROPS!r}\n"
        "assert p.read(props['digest'], props).outs == props\n"  # pulumi refresh
        "p.delete(props['digest'], props)\n"  # pulumi destroy: the tag stays
        "assert p.deployed_tag(props['digest']) == 'deployed-' + props['digest'][7:]\n"
        "import botocore.exceptions\n"
        "try:\n"
        "    p.update(props['digest'], props, props)\n"
        "except botocore.exceptions.EndpointConnectionError:\n"
        "    print('ok')\n"))  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]

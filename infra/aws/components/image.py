"""Image: the one code image every service runs.

Creates: an ECR repository (scan on push, immutable tags, encrypted with the stack's key, a lifecycle that expires
only images no task definition ever named) and the image
built from ``worker_image/Dockerfile`` with the repository root as context (``.dockerignore`` keeps only
``worker_image/``, ``runtime/`` and ``dagster_project/``) -- plus, for code locations in stack config, each location's
directory as a named build context, its requirements and a generated workspace -- pushed on ``pulumi up`` by
digest, with no tag, and referenced by that digest. With ``image.uri`` set nothing is built and the given (tag- or digest-pinned) image is used.

Why no tag: ECR refuses a push to an immutable tag that exists (``ImageTagAlreadyExistsException``), and
docker-build rebuilds for inputs no content tag can see (another checkout directory, file modes), or when
going back to an earlier tree. A push by digest of an image that is already there is a no-op, and a
different image gets a different digest, so nothing is ever overwritten. Once pushed, the image is tagged
``deployed-<its digest>`` (a dynamic resource: ECR's retag, with the deployer's credentials) before any task
definition names it; the lifecycle keeps every such image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build
import yaml
from pulumi.dynamic import CreateResult, ResourceProvider, UpdateResult

from infra.specs import code_locations
from infra.aws import naming
from infra.aws.components import sdk
from infra.stackfile.config import Image as ImageConfig

REPO_ROOT = Path(__file__).resolve().parents[3]
# Every image a task definition names carries a tag made of its own digest, so the tag never moves (ECR's
# immutable tags hold) and tells a deployed image from one pushed by an update that failed before its task
# definitions. Run task definition revisions stay ACTIVE (components/service.py, skip_destroy), and runs or a
# rollback may launch them, so no deployed image expires: no lifecycle rule selects these tags, and a rule expires
# only what its selection matches (ECR User Guide, "Lifecycle policy evaluation rules"; untagged images are
# selected by tagStatus "untagged" alone, "Lifecycle policy properties").
DEPLOYED_TAG_PREFIX = "deployed-"
MANIFEST_MEDIA_TYPES = [
    "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
]  # fmt: skip
KEEP_UNDEPLOYED = 20

LIFECYCLE_POLICY = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"images never named by a task definition: keep the last {KEEP_UNDEPLOYED}",
                "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": KEEP_UNDEPLOYED},
                "action": {"type": "expire"},
            }
        ]
    }
)


def _tag_provider_class() -> type[ResourceProvider]:
    # Defined in a function, as the guard's (components/guard.py): dill stores the class, its calls and the SDK
    # client in the state by value, so `pulumi refresh` and `pulumi destroy` need none of this project's modules.
    client_for, manifest_media_types, prefix = sdk.client, MANIFEST_MEDIA_TYPES, DEPLOYED_TAG_PREFIX

    def tag_of(digest: str) -> str:
        """``deployed-<hex>`` for ``sha256:<hex>`` (ECR image tags: up to 300 characters of [A-Za-z0-9_.-])."""
        return prefix + digest.split(":", 1)[1]

    class TagProvider(ResourceProvider):
        serialize_as_secret_always = False  # a repository name and a digest
        deployed_tag = staticmethod(tag_of)

        @staticmethod
        def tag_image(props: dict, client=None) -> None:
            """Give the pushed image its deployed tag: ECR's retag (ECR User Guide, "Retagging an image":
            BatchGetImage, then PutImage of the same manifest under the tag). Tagged already is done."""
            ecr = client or client_for("ecr", props)
            repository, digest = props["repositoryName"], props["digest"]
            # The manifest as it was pushed (no conversion), so PutImage stores the same digest.
            (image,) = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageDigest": digest}],
                                           acceptedMediaTypes=manifest_media_types)["images"]  # fmt: skip
            try:
                ecr.put_image(repositoryName=repository, imageManifest=image["imageManifest"],
                              imageManifestMediaType=image["imageManifestMediaType"],
                              imageTag=tag_of(digest), imageDigest=digest)  # fmt: skip
            except ecr.exceptions.ImageAlreadyExistsException:
                pass

        def create(self, props):
            self.tag_image(props)
            return CreateResult(props["digest"], props)

        def update(self, _id, _olds, news):
            self.tag_image(news)  # the old image keeps its tag: a revision may still name it
            return UpdateResult(news)

        def delete(self, _id, _props):
            pass  # the tag stays with its image; the repository goes with the stack (force_delete)

    return TagProvider


_TagProvider = _tag_provider_class()
deployed_tag, tag_image = _TagProvider.deployed_tag, _TagProvider.tag_image


class DeployedTag(pulumi.dynamic.Resource):
    """The deployed tag on ``digest`` in ``repository_name``; its ``digest`` output resolves once it is there."""

    digest: pulumi.Output[str]

    def __init__(self, name: str, repository_name: pulumi.Input[str], digest: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None):  # fmt: skip
        super().__init__(_TagProvider(), name, {"repositoryName": repository_name, "digest": digest, **sdk.where()}, opts)


@dataclass
class ImageArgs:
    config: ImageConfig
    # Code locations built on top of worker_image/Dockerfile; None: the example only, which the base has.
    locations: tuple[code_locations.Location, ...] | None = None
    build_dir: Path | None = None  # where generated build inputs (workspace.yaml) are written
    kms_key_arn: pulumi.Input[str] | None = None  # the repository's encryption (set at creation: a new key replaces it)


WORKSPACE_CONTEXT = "dca-workspace"


def build_inputs(args: ImageArgs) -> tuple[dict, dict]:
    """The docker-build context and Dockerfile: the repository and worker_image/Dockerfile, plus, for configured
    code locations, one named context per location, a generated workspace.yaml and the lines that add them."""
    dockerfile = REPO_ROOT / "worker_image" / "Dockerfile"
    if not args.locations:
        return {"location": str(REPO_ROOT)}, {"location": str(dockerfile)}
    args.build_dir.mkdir(parents=True, exist_ok=True)
    workspace = code_locations.workspace(args.locations, in_image=True)
    (args.build_dir / "workspace.yaml").write_text(yaml.safe_dump(workspace, sort_keys=False))
    named = {f"code-{loc.name}": {"location": str(loc.directory)} for loc in args.locations}
    named[WORKSPACE_CONTEXT] = {"location": str(args.build_dir)}
    lines = code_locations.dockerfile_lines(args.locations, WORKSPACE_CONTEXT)
    inline = dockerfile.read_text().rstrip("\n") + "\n\n# Code locations from stack config (infra/specs/code_locations.py)\n" + "\n".join(lines) + "\n"
    return {"location": str(REPO_ROOT), "named": named}, {"inline": inline}


class Image(pulumi.ComponentResource):
    ref: pulumi.Output[str]

    def __init__(self, name: str, args: ImageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dagster-celery-aws:image:Image", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        if cfg.uri:
            self.ref = pulumi.Output.from_input(cfg.uri)
        else:
            repo = aws.ecr.Repository(
                naming.fit(aws.ecr.Repository, f"{name}-repo"),
                image_scanning_configuration={"scan_on_push": True},
                image_tag_mutability="IMMUTABLE",
                encryption_configurations=[{"encryption_type": "KMS", "kms_key": args.kms_key_arn}] if args.kms_key_arn else None,
                force_delete=True,  # images are rebuilt from the repository; they hold no data
                opts=child,
            )
            aws.ecr.LifecyclePolicy(f"{name}-lifecycle", repository=repo.name, policy=LIFECYCLE_POLICY, opts=child)
            token = aws.ecr.get_authorization_token_output(registry_id=repo.registry_id)
            context, dockerfile = build_inputs(args)
            image = docker_build.Image(
                f"{name}-image",
                context=context,
                dockerfile=dockerfile,
                platforms=[cfg.platform],
                push=False,  # the export below pushes, by digest
                exports=[{"image": {"names": [repo.repository_url], "push": True, "push_by_digest": True}}],
                registries=[{"address": repo.repository_url, "username": token.user_name, "password": token.password}],
                opts=child,
            )
            # Tagged as deployed before any task definition names it.
            tagged = DeployedTag(f"{name}-deployed-tag", repo.name, image.digest, opts=child)
            # By digest: a service never picks up a different image than the one this update built.
            self.ref = pulumi.Output.concat(repo.repository_url, "@", tagged.digest)
        self.register_outputs({"ref": self.ref})

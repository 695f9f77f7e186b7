"""Image: the one code image every service runs.

Creates: an ECR repository (scan on push, immutable tags, encrypted with the stack's key, lifecycle keeping the
last images) and the image
built from ``worker_image/Dockerfile`` with the repository root as context (``.dockerignore`` keeps only
``worker_image/``, ``runtime/`` and ``dagster_project/``) -- plus, for code locations in stack config, each location's
directory as a named build context, its requirements and a generated workspace -- pushed on ``pulumi up`` by
digest, with no tag, and referenced by that digest. With ``image.uri`` set nothing is built and the given (tag- or digest-pinned) image is used.

Why no tag: ECR refuses a push to an immutable tag that exists (``ImageTagAlreadyExistsException``), and
docker-build rebuilds for inputs no content tag can see (another checkout directory, file modes), or when
going back to an earlier tree. A push by digest of an image that is already there is a no-op, and a
different image gets a different digest, so nothing is ever overwritten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build
import yaml

from infra import code_locations, naming
from infra.config import Image as ImageConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
KEEP_IMAGES = 20

LIFECYCLE_POLICY = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"keep the last {KEEP_IMAGES} images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_IMAGES},
                "action": {"type": "expire"},
            }
        ]
    }
)


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
    inline = dockerfile.read_text().rstrip("\n") + "\n\n# Code locations from stack config (infra/code_locations.py)\n" + "\n".join(lines) + "\n"
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
            # By digest: a service never picks up a different image than the one this update built.
            self.ref = pulumi.Output.concat(repo.repository_url, "@", image.digest)
        self.register_outputs({"ref": self.ref})

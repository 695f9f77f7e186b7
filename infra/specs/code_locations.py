"""Code locations: the user's Dagster code, named in stack config, in the image and in the local runner.

Each configured location is a directory (``path``, relative to the project directory or absolute) with a
module Dagster loads (``module``, from that directory as working directory) and an optional requirements
file pip installs. In the image the directory becomes ``/opt/dagster/code/<name>``; locally the runner
loads it where it is. Both get their workspace from ``workspace()``, so webserver, daemon, runs and every
worker load the same locations. Without ``codeLocations`` the example location of this repository
(``dagster_project``, already in the image's app directory) is the workspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infra.specs import contract
from infra.stackfile.config import CodeLocation, ConfigError, StackConfig

IMAGE_CODE_DIR = "/opt/dagster/code"  # one directory per location, <IMAGE_CODE_DIR>/<name>
IMAGE_PINS = "/opt/dagster/constraints.txt"  # worker_image/requirements.txt in the image (worker_image/Dockerfile)
PINS = Path(__file__).resolve().parents[2] / "worker_image" / "requirements.txt"  # the same file, here
EXAMPLE = CodeLocation(name="dagster_project", path=".", module="dagster_project")
# The runtime's alert sensors (dagster_celery_aws.alert_sensors): a location of every workspace, so pipeline alerts
# cover the user's locations without a line of theirs (stack config ``alerts``; docs/operations.md).
ALERTS = {"python_module": {"module_name": "dagster_celery_aws.alert_sensors", "location_name": "dagster_celery_aws_alerts"}}


@dataclass(frozen=True)
class Location:
    name: str
    module: str
    directory: Path  # where the code is on this machine
    requirements: Path | None  # a requirements file to pip-install, or None
    example: bool = False  # this repository's example, already in the image's app directory

    def image_directory(self) -> str:
        return f"{IMAGE_CODE_DIR}/{self.name}"


def resolve(cfg: StackConfig, project_dir: Path) -> tuple[Location, ...]:
    """The configured locations, checked on disk; a ConfigError names each missing directory, module or file."""
    if cfg.code_locations is None:
        return (Location(EXAMPLE.name, EXAMPLE.module_name, project_dir, None, example=True),)
    found, problems = [], []
    for i, c in enumerate(cfg.code_locations):
        where = f"codeLocations[{i}]"
        directory = (project_dir / c.path).resolve()
        if not directory.is_dir():
            problems.append(f"{where}.path = {c.path!r}: no such directory ({directory})")
            continue
        top = c.module_name.split(".")[0]
        if not ((directory / top / "__init__.py").is_file() or (directory / f"{top}.py").is_file()):
            problems.append(f"{where}.module = {c.module_name!r}: neither {top}/__init__.py nor {top}.py in {directory}")
        requirements = directory / (c.requirements or "requirements.txt")
        if c.requirements is not None and not requirements.is_file():
            problems.append(f"{where}.requirements = {c.requirements!r}: no such file in {directory}")
        found.append(Location(c.name, c.module_name, directory, requirements if requirements.is_file() else None))
    if problems:
        raise ConfigError(problems)
    return tuple(found)


def names(locations: tuple[Location, ...]) -> str:
    """contract.CODE_LOCATIONS: the locations the image check expects the workspace to load."""
    return ",".join(loc.name for loc in locations)


def workspace(locations: tuple[Location, ...], in_image: bool) -> dict:
    """workspace.yaml: every location as a python module loaded from its directory, and the runtime's alerts."""
    def directory(loc: Location) -> str:
        if not in_image:
            return str(loc.directory)
        return contract.APP_DIR if loc.example else loc.image_directory()

    return {"load_from": [
        {"python_module": {"module_name": loc.module, "location_name": loc.name, "working_directory": directory(loc)}}
        for loc in locations
    ] + [ALERTS]}  # fmt: skip


def dockerfile_lines(locations: tuple[Location, ...], workspace_context: str) -> list[str]:
    """What the image adds on top of worker_image/Dockerfile for configured locations: each directory from a
    named build context ``code-<name>``, its requirements installed, and the generated workspace."""
    # `--from=<name>` is a named build context, not a stage: hadolint's DL3022 cannot know it.
    named = "# hadolint ignore=DL3022"
    lines = ["USER 0"]
    for loc in locations:
        target = loc.image_directory()
        lines += [named, f"COPY --from=code-{loc.name} --chown=10001:10001 . {target}"]
        if loc.requirements is not None:
            relative = loc.requirements.relative_to(loc.directory).as_posix()
            # From the location's directory, so relative paths in the file (./vendor/x.whl, .) resolve as locally.
            lines.append(f"WORKDIR {target}")
            # The image's pins as constraints: a location's requirements cannot move the runtime's versions.
            lines.append(f"RUN pip install --no-cache-dir --constraint {IMAGE_PINS} --requirement {relative}")
    lines += [
        f"WORKDIR {contract.APP_DIR}",
        named,
        f"COPY --from={workspace_context} workspace.yaml {contract.APP_DIR}/workspace.yaml",
        "USER 10001:10001",
    ]
    return lines

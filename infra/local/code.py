"""The user's code on this machine: the stack's code locations, their requirements, and what the code gets
from the environment -- as the image and the task definitions give them on AWS.

- Locations: ``codeLocations`` of the stack file (paths relative to the stack file's directory), or one
  module given with ``--code-module`` (and ``--code-dir``), or the repository's example.
- Requirements: each location's requirements file is pip-installed into ``<state>/code/<name>`` (from the
  location's directory, with the image's pins as constraints, as the image does), again only when the file or
  the pins changed; those directories and the locations' own come first on every process's PYTHONPATH.
- Access: ``access.environment`` goes to every process, a queue's to its worker only. Secrets are ARNs that
  only ECS can read: locally each secret's variable is passed on from this shell's environment when set.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from infra.specs import code_locations
from infra.stackfile.config import Access, StackConfig
from infra.local.options import REPO_ROOT, Options


class CodeError(Exception):
    pass


def locations(opts: Options, cfg: StackConfig) -> tuple[code_locations.Location, ...]:
    if opts.code_module:
        directory = Path(opts.code_dir).resolve() if opts.code_dir else REPO_ROOT
        name = opts.code_module.split(".")[0]
        return (code_locations.Location(name, opts.code_module, directory, None, example=directory == REPO_ROOT),)
    return code_locations.resolve(cfg, opts.stack_file.resolve().parent)


def install_requirements(locs, state: Path) -> list[Path]:
    """Install each location's requirements into a directory of its own; returns those directories."""
    installed = []
    for loc in locs:
        if loc.requirements is None:
            continue
        target = state / "code" / loc.name
        stamp = target / ".requirements.sha256"
        digest = hashlib.sha256(loc.requirements.read_bytes() + code_locations.PINS.read_bytes()).hexdigest()
        if not (stamp.is_file() and stamp.read_text() == digest):
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--upgrade",
                 "--target", str(target), "--constraint", str(code_locations.PINS),
                 "--requirement", str(loc.requirements)],
                cwd=loc.directory, capture_output=True, text=True, timeout=900,
            )  # fmt: skip
            if proc.returncode != 0:
                raise CodeError(f"code location {loc.name!r}: pip could not install {loc.requirements} with the "
                                f"image's pins (worker_image/requirements.txt) as constraints: {pip_reason(proc.stdout + proc.stderr)}")
            stamp.write_text(digest)
        installed.append(target)
    return installed


def pip_reason(output: str) -> str:
    """pip's reason in a line: the lines under "The conflict is caused by:" (up to the blank line), else its last
    error line."""
    lines = [line.strip() for line in output.splitlines()]
    if "The conflict is caused by:" in lines:
        start = lines.index("The conflict is caused by:") + 1
        end = lines.index("", start) if "" in lines[start:] else len(lines)
        return "; ".join(lines[start:end])
    errors = [line for line in lines if line.startswith("ERROR:")] or [line for line in lines if line]
    return errors[-1] if errors else "(no output)"


def python_path(locs, installed: list[Path]) -> list[str]:
    return [*(str(loc.directory) for loc in locs), *(str(p) for p in installed)]


def access_env(access: Access, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables ``access`` gives a process: plain ones as configured, secrets from this environment."""
    environ = os.environ if environ is None else environ
    return {**access.environment, **{k: environ[k] for k in access.secrets if k in environ}}

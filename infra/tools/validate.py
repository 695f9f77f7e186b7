"""``make validate`` (``python -m infra.tools.validate --stack-file Pulumi.<stack>.yaml``): a stack file and its code,
checked before anything is created. ``pulumi up``'s preview runs the same checks (infra/__main__.py).

1. the stack file (infra/stackfile/config.py: every key, value and rule);
2. its code locations: each directory and module where the file says (infra/specs/code_locations.py);
3. their requirements, installed with the image's pins (worker_image/requirements.txt) as constraints, as the
   image build does: a requirement that would move the runtime's versions, or that pip cannot resolve, is named
   here rather than midway through ``pulumi up``'s image build. Installed under ``--state-dir`` (again only when
   the file or the pins change), so that step 4 can import the code;
4. each location imported, and every job of it inspected as the local runner's preflight does
   (``infra.local.jobs``): a job whose steps go to a queue the stack has no worker service for is an error,
   naming the job, the step and the queue (such a step would wait forever); a job the stack's workers would not
   run for another reason (an executor that runs steps itself, required run config) is a warning.

The code is imported with the stack's variables (``access.environment``, every queue's too) and placeholders for
the broker, the result backend and the secrets: checking where steps go needs no value of theirs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from infra.specs import code_locations, contract
from infra.stackfile.config import DEFAULT_QUEUE, ConfigError, StackConfig, load_stack_file

REPO_ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = "placeholder-not-read"  # a value only resolved, never used: the code is imported, not run


@dataclass
class Findings:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    jobs: int = 0


def code_env(cfg: StackConfig, python_path: list[str], home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "DCA_"))}
    for access in (cfg.access, *(q.access for q in cfg.queues)):
        env.update(access.environment)
        env.update({name: PLACEHOLDER for name in access.secrets})
    env.update({
        contract.BROKER_URL: f"amqp://{PLACEHOLDER}@127.0.0.1:5672/", contract.BACKEND_URL: f"db+sqlite:///{home}/r.db",
        contract.S3_BUCKET: PLACEHOLDER, "DAGSTER_HOME": home, contract.QUEUES: ",".join(q.name for q in cfg.queues),
        "PYTHONPATH": os.pathsep.join([*python_path, str(REPO_ROOT)]),
    })  # fmt: skip
    return env


def check_code(cfg: StackConfig, project_dir: Path, state: Path) -> Findings:
    """Steps 2-4 for a valid stack config; a ConfigError (step 2) is raised as the program raises it."""
    from infra.local import code, jobs

    found = Findings()
    locs = code_locations.resolve(cfg, project_dir)
    try:
        installed = code.install_requirements(locs, state)
    except code.CodeError as err:
        found.errors.append(str(err))
        return found
    served = {q.name for q in cfg.queues}
    with tempfile.TemporaryDirectory() as home:
        env = code_env(cfg, code.python_path(locs, installed), home)
        for loc in locs:
            inspected, error = jobs.inspect_location(loc, DEFAULT_QUEUE, env, served)
            if error:
                found.errors.append(f"code location {error}")
                continue
            for name, job in sorted(inspected.items()):
                found.jobs += 1
                # As the image check judges them: routing fails the deployment, another executor only warns.
                found.errors += [f"code location {loc.name!r}: {line}" for line in job["routing"]]
                if job["problem"] and not job["routing"]:
                    found.warnings.append(f"code location {loc.name!r}, job {name!r}: {job['problem']}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.tools.validate", description=__doc__.splitlines()[0])
    parser.add_argument("--stack-file", required=True, help="Pulumi.<stack>.yaml")
    parser.add_argument("--state-dir", default=".local/validate",
                        help="where the locations' requirements are installed (default .local/validate)")  # fmt: skip
    args = parser.parse_args(argv)
    stack_file = Path(args.stack_file)
    try:
        cfg = load_stack_file(stack_file)
        found = check_code(cfg, stack_file.resolve().parent, Path(args.state_dir).resolve())
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for line in found.warnings:
        print(f"warning: {line}")
    for line in found.errors:
        print(f"error: {line}", file=sys.stderr)
    if found.errors:
        return 1
    queues = ", ".join(q.name for q in cfg.queues)
    print(f"{stack_file}: valid; {found.jobs} job(s) checked, every step on a queue of the stack ({queues})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

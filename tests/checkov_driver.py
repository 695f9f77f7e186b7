"""Run checkov's engine on files, in checkov's own virtualenv (tests/checkov-requirements.txt), and print the
results as JSON: ``{path: {"passed": [[check_id, resource]], "failed": [...], "parsing_errors": [...]}}``.

    .venv-checkov/bin/python tests/checkov_driver.py plan.json ... worker_image/Dockerfile

A ``*.json`` file is a Terraform plan (``infra/tools/tfplan.py``), read by checkov's ``terraform_plan`` runner; a file
named ``Dockerfile`` is read by its ``dockerfile`` runner. Each file is its own run (its own graph). Every
built-in check of those frameworks runs; nothing is downloaded (no platform checks, no external modules).
This file imports checkov only: it runs outside the project's environment.
"""

from __future__ import annotations

import json
import logging
import sys


def main(paths: list[str]) -> int:
    logging.disable(logging.WARNING)  # checkov logs parse details on stderr; the report is stdout
    from checkov.dockerfile.runner import Runner as DockerfileRunner
    from checkov.runner_filter import RunnerFilter
    from checkov.terraform.plan_runner import Runner as PlanRunner

    results = {}
    for path in paths:
        if path.endswith("Dockerfile"):
            runner, framework = DockerfileRunner(), "dockerfile"
        else:
            runner, framework = PlanRunner(), "terraform_plan"
        report = runner.run(root_folder=None, files=[path], runner_filter=RunnerFilter(framework=[framework]))
        results[path] = {
            "passed": [[c.check_id, c.resource] for c in report.passed_checks],
            "failed": [[c.check_id, c.resource] for c in report.failed_checks],
            "parsing_errors": list(report.parsing_errors),
        }
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

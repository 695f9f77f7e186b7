"""The image contract check (dagster_celery_aws.image_check) that the daemon's task runs before the migration:
what a prebuilt image must contain, each missing part named."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from dagster_celery_aws import image_check

from tests.conftest import REPO_ROOT


def layout(tmp_path: Path, locations: dict[str, str]) -> tuple[Path, str]:
    """A DAGSTER_HOME with the image's dagster.yaml and a workspace loading ``locations`` (name -> module)."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "worker_image" / "dagster.yaml", home / "dagster.yaml")
    code = tmp_path / "code"
    code.mkdir()
    (code / "present_module.py").write_text("VALUE = 1\n")
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [
        {"python_module": {"module_name": module, "location_name": name, "working_directory": str(code)}}
        for name, module in locations.items()
    ]}))  # fmt: skip
    return workspace, str(home)


def test_an_image_that_keeps_the_contract_passes(tmp_path):
    workspace, home = layout(tmp_path, {"analytics": "present_module"})
    assert image_check.problems(workspace, {"analytics"}, home) == []


def test_a_location_the_stack_names_but_the_image_lacks_is_named(tmp_path):
    workspace, home = layout(tmp_path, {"analytics": "present_module"})
    (found,) = image_check.problems(workspace, {"analytics", "ml"}, home)
    assert found == f"{workspace}: loads ['analytics'], the stack names ['analytics', 'ml']"


def test_a_module_that_does_not_import_is_named(tmp_path):
    workspace, home = layout(tmp_path, {"analytics": "absent_module"})
    (found,) = image_check.problems(workspace, {"analytics"}, home)
    assert found.startswith("code location 'analytics': module 'absent_module' does not import")


def test_a_missing_or_broken_instance_config_is_named(tmp_path):
    workspace, home = layout(tmp_path, {"analytics": "present_module"})
    assert image_check.problems(workspace, {"analytics"}, str(tmp_path / "nowhere")) == [
        f"$DAGSTER_HOME/dagster.yaml: not found (DAGSTER_HOME={str(tmp_path / 'nowhere')!r})"]
    (Path(home) / "dagster.yaml").write_text("run_launcher: {module: x}\n")
    (found,) = image_check.problems(workspace, {"analytics"}, home)
    assert found.startswith("$DAGSTER_HOME/dagster.yaml: not a valid instance config")


def test_the_variable_is_the_contracts():
    from infra import contract

    assert image_check.LOCATIONS_VAR == contract.CODE_LOCATIONS


def _main(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``python -m dagster_celery_aws.image_check`` as the daemon's task runs it: workspace.yaml in its working
    directory, the stack's locations and DAGSTER_HOME in its environment."""
    clean = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", image_check.LOCATIONS_VAR)}
    return subprocess.run([sys.executable, "-m", "dagster_celery_aws.image_check"], cwd=cwd, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_main_exits_0_on_a_kept_contract_and_1_naming_each_missing_part(tmp_path):
    workspace, home = layout(tmp_path, {"analytics": "present_module"})
    ok = _main(workspace.parent, {"DAGSTER_HOME": home, image_check.LOCATIONS_VAR: "analytics"})
    assert (ok.returncode, ok.stdout.strip(), ok.stderr) == (0, "image contract: OK (analytics)", "")
    bad = _main(workspace.parent, {image_check.LOCATIONS_VAR: "analytics,ml"})  # no DAGSTER_HOME, ml lacking
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.splitlines() == [
        "image contract: $DAGSTER_HOME/dagster.yaml: not found (DAGSTER_HOME=None)",
        f"image contract: {workspace}: loads ['analytics'], the stack names ['analytics', 'ml']",
    ]
    nowhere = tmp_path / "empty"
    nowhere.mkdir()
    missing = _main(nowhere, {"DAGSTER_HOME": home, image_check.LOCATIONS_VAR: "analytics"})
    assert missing.returncode == 1 and missing.stderr.strip() == f"image contract: {nowhere / 'workspace.yaml'}: not found"

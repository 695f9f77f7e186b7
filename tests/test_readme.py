"""The README against the code: its example test runs as written, its config reference lists every key the
config models accept (and no other), and it lists every stack output (and no other)."""

from __future__ import annotations

import re
import typing

from pydantic import BaseModel

from infra.stackfile.config import StackConfig
from infra.tools.testing import run_stack
from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"


def test_readme_user_stack_example_passes(monkeypatch):
    readme = README.read_text()
    block = re.search(r"```python\n(# tests/test_my_stack.py\n.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    monkeypatch.chdir(REPO_ROOT)
    exec(compile(block, "README.md", "exec"), namespace)
    tests = [fn for name, fn in namespace.items() if name.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        test()


def _section(heading: str) -> str:
    """A ``## heading`` section of the README, up to the next ``## `` heading."""
    text = README.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _first_column_names(section: str, header: str) -> set[str]:
    """The `backticked` names in the first column of the table under ``header`` (its first row)."""
    table = section[section.index(header) :].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


def _models(annotation) -> tuple[list[type[BaseModel]], bool]:
    """The config models inside a field's type, and whether the field is a list of them."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation], False
    found = [_models(arg) for arg in typing.get_args(annotation)]
    # A list of models, also inside an optional (`tuple[X, ...] | None`).
    return [m for models, _ in found for m in models], typing.get_origin(annotation) in (tuple, list) or any(
        is_list for _, is_list in found
    )


def config_key_paths(model: type[BaseModel] = StackConfig, prefix: str = "") -> set[str]:
    """Every key path the config accepts, as `pulumi config set --path` spells it: ``webserver.cpu``,
    ``queues[].scaling.idleMinutes``, ``ui.cognito.userPoolArn`` (aliases are camelCase)."""
    paths = set()
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        nested, is_list = _models(field.annotation)
        if is_list or not nested:
            paths.add(key)  # a value, or a list users write as a whole (`queues`)
        for sub in nested:
            paths |= config_key_paths(sub, key + ("[]." if is_list else "."))
    return paths


def test_config_reference_lists_every_key_and_no_other():
    keys = config_key_paths()
    assert {"queues", "queues[].scaling.idleMinutes", "ui.oidc.clientId", "oidcClientSecret"} <= keys  # the walk works
    listed = _first_column_names(_section("Stack config reference"), "| key | default | rule |")
    assert not keys - listed, f"config keys missing from the README's Stack config reference: {sorted(keys - listed)}"
    assert not listed - keys, f"README lists keys the config does not accept: {sorted(listed - keys)}"


def test_readme_lists_every_stack_output_and_no_other():
    outputs = set(run_stack(REPO_ROOT / "Pulumi.prod.yaml", stack="prod").outputs)
    listed = _first_column_names(_section("Deploy to AWS"), "| output | what |")
    assert not outputs - listed, f"stack outputs missing from the README (Deploy to AWS): {sorted(outputs - listed)}"
    assert not listed - outputs, f"README lists outputs the stack does not have: {sorted(listed - outputs)}"


def test_product_files_stand_alone(repo_root):
    """Code, config and docs cite public sources (docs/facts.md), never the team's private notes."""
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=repo_root, capture_output=True, text=True, check=True).stdout.split()
    offenders = [
        path for path in tracked
        if path.endswith((".py", ".md", ".yaml", ".yml", ".toml", "Dockerfile", "Makefile"))
        and any(word in (repo_root / path).read_text(errors="replace") for word in ("FACTS" + ".md", "../" + "shared"))
    ]  # fmt: skip
    assert offenders == []

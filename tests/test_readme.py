"""The README and docs/ against the code: the README's example test runs as written and it lists every stack
output (and no other); docs/config.md is what infra/tools/config_reference.py makes of the config models (`make
docs`) and lists every key they accept (and no other)."""

from __future__ import annotations

import re

from pydantic import BaseModel

from infra.stackfile.config import StackConfig
from infra.tools import config_reference
from infra.tools.testing import run_stack
from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
CONFIG_REFERENCE = REPO_ROOT / "docs" / "config.md"


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


def _section(heading: str, page=README) -> str:
    """A ``## heading`` section of a page, up to the next ``## `` heading (the whole page for its ``# `` title)."""
    text = "\n" + page.read_text()
    if text.startswith(f"\n# {heading}\n"):
        return text
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _first_column_names(section: str, header: str) -> set[str]:
    """The `backticked` names in the first column of the table under ``header`` (its first row)."""
    table = section[section.index(header) :].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


def config_key_paths(model: type[BaseModel] = StackConfig, prefix: str = "") -> set[str]:
    """Every key path the config accepts, as `pulumi config set --path` spells it: ``webserver.cpu``,
    ``queues[].scaling.idleMinutes``, ``ui.cognito.userPoolArn`` (aliases are camelCase)."""
    paths = set()
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        nested, is_list = config_reference.models_in(field.annotation)
        if is_list or not nested:
            paths.add(key)  # a value, or a list users write as a whole (`queues`)
        for sub in nested:
            paths |= config_key_paths(sub, key + ("[]." if is_list else "."))
    return paths


def test_config_reference_lists_every_key_and_no_other():
    keys = config_key_paths()
    assert {"queues", "queues[].scaling.idleMinutes", "ui.oidc.clientId", "oidcClientSecret"} <= keys  # the walk works
    listed = _first_column_names(_section("Stack config reference", CONFIG_REFERENCE), "| key | type | default | rule |")
    assert not keys - listed, f"config keys missing from docs/config.md: {sorted(keys - listed)}"
    assert not listed - keys, f"docs/config.md lists keys the config does not accept: {sorted(listed - keys)}"


def test_the_config_reference_is_generated_from_the_models():
    assert CONFIG_REFERENCE.read_text() == config_reference.page(), "docs/config.md is stale: run `make docs`"
    # Every key has its rule from its field's docstring; a field without one stops the generator.
    assert all(rule for *_, rule in config_reference.rows())


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

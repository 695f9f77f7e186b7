"""The README's example test of a user's own stack runs as written."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT


def test_readme_user_stack_example_passes(monkeypatch):
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"```python\n(# tests/test_my_stack.py\n.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    monkeypatch.chdir(REPO_ROOT)
    exec(compile(block, "README.md", "exec"), namespace)
    tests = [fn for name, fn in namespace.items() if name.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        test()


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

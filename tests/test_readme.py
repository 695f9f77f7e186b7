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

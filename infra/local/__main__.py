"""``python -m infra.local up [--once] [--stack-file F] ...``: see ``--help`` and infra/local/__init__.py."""

from __future__ import annotations

import sys

from infra.local.options import parse
from infra.local.runner import up


def main(argv: list[str] | None = None) -> int:
    return up(parse(argv))


if __name__ == "__main__":
    sys.exit(main())

"""Issue 29's table: N runs of example_job in flight through the local runner while the broker's, the database's
or both services' connections are cut and refused for a while (tests/chaos.py); per cut, the runs that ended
SUCCESS and the time from the launch until the last run ended.

    PYTHONPATH=runtime:. .venv/bin/python benchmarks/chaos.py [--runs 16] [--cut-seconds 15] [--cut-at 12]
        [--repo PATH]

``--repo`` runs another tree's runner and runtime with this environment (e.g. a worktree of the code before a
change: ``git worktree add --detach ../before main``), for a before/after table. Also prints the first error of
each run that did not succeed. Needs RabbitMQ and PostgreSQL on 127.0.0.1 (a vhost and a database of its own).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT)]

from tests.chaos import chaos  # noqa: E402

CUTS = {"none": (), "broker": ("broker",), "database": ("database",), "both": ("broker", "database")}  # none: the baseline


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=16)
    p.add_argument("--cut-seconds", type=float, default=15)
    p.add_argument("--cut-at", type=float, default=12, help="seconds after the launch (at least: all runs started)")
    p.add_argument("--cuts", default="broker,database,both", help=f"comma-separated, of {', '.join(CUTS)}")
    p.add_argument("--full", action="store_true", help="print each failure event whole")
    p.add_argument("--repo", type=Path, default=REPO_ROOT, help="the tree whose runner and runtime run")
    args = p.parse_args(argv)
    env = {"PYTHONPATH": str(args.repo / "runtime")} if args.repo.resolve() != REPO_ROOT else None
    rows = []
    for name in args.cuts.split(","):
        with tempfile.TemporaryDirectory(prefix="dca-chaos-") as root:
            out = chaos(Path(root), args.runs, CUTS[name], args.cut_seconds, args.cut_at, repo=args.repo, env=env)
        rows.append((name, out))
        print(f"{name}: {out.succeeded}/{args.runs} SUCCESS, last run ended {out.seconds} s after the launch "
              f"(cut at {out.cut_at}); UI after the database cut: {(out.ui_after_database or '-').splitlines()[0]}",
              flush=True)  # fmt: skip
        for run_id, messages in out.failures.items():
            first = messages[0].strip().splitlines() if messages else ["(no failure event)"]
            shown = first if args.full else first[:1] + first[-2:]
            print(f"  {run_id} {out.statuses[run_id]}: {' | '.join(shown)}", flush=True)
    print(f"\n{args.runs} runs of example_job, cuts of {args.cut_seconds:g} s ({args.repo})\n")
    print("| cut | runs SUCCESS | time to finish | UI request after the database cut |\n|---|---|---|---|")
    for name, out in rows:
        ui = out.ui_after_database or "-"
        print(f"| {name}{', ' if out.cut_at else ''}{', '.join(f'{k} {v:g} s in' for k, v in out.cut_at.items())} | {out.succeeded} / "
              f"{args.runs} | {out.seconds:g} s | {ui[:80]} |")


if __name__ == "__main__":
    main()

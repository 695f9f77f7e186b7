"""Loaded at start-up by every Python process that has this directory on its PYTHONPATH (step_path.py puts it
there for its workers and run workers): installs the round-trip counters of ``benchmarks/roundtrips.py`` when
$DCA_BENCH_ROUNDTRIPS names a directory. Loaded by file path, so that nothing else joins ``sys.path``."""

import importlib.util
import os
from pathlib import Path

if os.environ.get("DCA_BENCH_ROUNDTRIPS"):
    _spec = importlib.util.spec_from_file_location("dca_bench_roundtrips", Path(__file__).parents[1] / "roundtrips.py")
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    _module.install()

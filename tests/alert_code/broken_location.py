"""A code location that does not load (tests/test_alerts.py)."""

raise RuntimeError("this location cannot load: missing dependency")

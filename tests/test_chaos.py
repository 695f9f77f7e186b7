"""Issue 29, "a chaos test": runs in flight through the local runner survive a broker restart and then a database
failover -- every connection to the service cut and new ones refused for ``CUT_SECONDS`` (tests/chaos.py) -- and
end SUCCESS within the cuts plus a bound; a UI request right after the database is back succeeds (issue 26,
item 7: the webserver's pooled connection is stale then). Kept cheap for ``make test``: three runs, 10 s cuts;
benchmarks/chaos.py runs the issue's larger table (16 runs, 15 s cuts). Timings are reported, not asserted
beyond the deadline that makes a stalled run a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos import chaos

RUNS = 3
CUT_SECONDS = 10
# A run of example_job takes ~10-20 s on the loaded 2-core machine; a client retries at most every second once
# the service is back. Before the fix a run stalled for ten minutes after a 15 s database cut (issue 29).
FINISH_BOUND = 120


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the runner and its helpers find processes in /proc")
def test_runs_in_flight_ride_through_a_broker_then_a_database_outage(tmp_path):
    outcome = chaos(tmp_path, runs=RUNS, cuts=("broker", "database"), cut_seconds=CUT_SECONDS, cut_at=0,
                    deadline=2 * CUT_SECONDS + FINISH_BOUND + 300)  # fmt: skip
    print(f"chaos: {outcome.succeeded}/{RUNS} SUCCESS in {outcome.seconds} s (cuts at {outcome.cut_at}, "
          f"{CUT_SECONDS} s each); UI right after the database came back: {outcome.ui_after_database}")
    assert outcome.ui_after_database == "Runs"
    assert outcome.statuses and set(outcome.statuses.values()) == {"SUCCESS"}, outcome.failures
    assert outcome.seconds <= 2 * CUT_SECONDS + FINISH_BOUND, outcome

"""The benchmark's round-trip counter (benchmarks/roundtrips.py): what it records from real clients, and how
it reads a chain's critical path back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from benchmarks import roundtrips
from tests.conftest import REPO_ROOT, postgres_database, rabbit_vhost

CLIENTS = textwrap.dedent("""
    import sys, boto3, kombu, psycopg2
    from dagster._core.events import DagsterEvent
    from dagster._core.events.log import EventLogEntry
    from dagster._serdes import serialize_value
    db, vhost, s3 = sys.argv[1:4]
    event = EventLogEntry(error_info=None, level=10, user_message="", run_id="r", timestamp=1.0, step_key="a",
                          job_name="j", dagster_event=DagsterEvent("STEP_START", "j", step_key="a"))
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=db)
    with conn.cursor() as cur:               # not autocommit: BEGIN, 2 statements, COMMIT
        cur.execute("CREATE TABLE t (run_id text, event text)")
        cur.execute("INSERT INTO t VALUES (%(param_1)s, %(param_2)s)", {"param_1": "r", "param_2": serialize_value(event)})
    conn.commit()
    conn.commit()                            # nothing open: nothing sent
    conn.autocommit = True
    with conn.cursor() as cur:               # autocommit: the statement only
        cur.execute("SELECT 1")
    with kombu.Connection(f"amqp://guest:guest@127.0.0.1:5672/{vhost}", transport_options={"confirm_publish": True}) as c:
        c.SimpleQueue("q").put({"x": 1})     # declares (synchronous), then a confirmed publish
    boto3.client("s3", endpoint_url=s3, region_name="us-east-1", aws_access_key_id="k",
                 aws_secret_access_key="k").list_buckets()
""")


def test_the_hooks_count_each_clients_round_trips(tmp_path, moto_endpoint):
    counts = tmp_path / "counts"
    counts.mkdir()
    env = {**os.environ, roundtrips.ENV: str(counts),
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "benchmarks" / "roundtrip_hooks"), str(REPO_ROOT)])}  # fmt: skip
    with postgres_database("dca_rt") as db, rabbit_vhost("dca-rt") as vhost:
        subprocess.run([sys.executable, "-c", CLIENTS, db, vhost, moto_endpoint], env=env, check=True, timeout=120)
    records = roundtrips.read(counts, 0, float("inf"))
    kinds = [r["kind"] for r in records if r["kind"] != "pg connect"]
    pg = [k for k in kinds if k.startswith("pg")]
    assert pg == ["pg begin", "pg statement", "pg statement", "pg commit", "pg statement"], pg
    insert = next(r for r in records if r["detail"].startswith("INSERT"))
    assert (insert["events"], insert["steps"]) == (["STEP_START"], ["a"])
    assert kinds.count("amqp Publish") == 1 and kinds.count("s3 request") == 1
    amqp = [r for r in records if r["kind"].startswith("amqp")]
    assert any(r["sync"] for r in amqp if r["kind"] != "amqp Publish")  # the queue's declare waits
    assert sum(roundtrips.is_round_trip(r) for r in records) == 5 + 1 + 1 + sum(r["sync"] for r in amqp if r["kind"] != "amqp Publish")
    assert {r["pid"] for r in records} == {records[0]["pid"]} and all(r["main"] for r in records)


def test_without_the_variable_nothing_is_installed(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != roundtrips.ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "benchmarks" / "roundtrip_hooks"), str(REPO_ROOT)])
    out = subprocess.run([sys.executable, "-c", "import psycopg2; print(psycopg2.connect.__module__)"], env=env,
                         check=True, capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    assert out.strip() == "psycopg2"


def rec(t, pid, kind, main=True, events=(), steps=(), **extra):
    return {"t0": t, "t1": t + 0.001, "pid": pid, "main": main, "kind": kind, "detail": "", "events": list(events),
            "steps": list(steps), **extra}  # fmt: skip


def write(t, pid, event, step, **kw):
    return rec(t, pid, "pg statement", events=[event], steps=[step], **kw)


def test_a_celery_links_critical_path_is_the_upstream_tail_the_dispatch_and_the_steps_head():
    RUN, W = 1, 2
    records = [
        rec(0, W, "task start", step="a"), write(1, W, "STEP_START", "a"), write(2, W, "STEP_SUCCESS", "a"),
        rec(3, W, "pg statement"),  # a's result stored
        rec(3.5, W, "s3 request", main=False),  # a's compute log, uploaded by a thread: off the path
        rec(4, W, "task end", step="a"),
        rec(0.5, RUN, "amqp Publish"),  # sends a
        rec(2.5, RUN, "pg statement"),  # a poll before a's result was stored: off the path
        rec(5, RUN, "pg statement"), write(6, RUN, "ENGINE_EVENT", "b"), rec(7, RUN, "amqp Publish"),  # sends b
        rec(7.5, RUN, "amqp Ack"),  # one-way
        rec(8, W, "task start", step="b"), rec(9, W, "pg statement"), write(10, W, "STEP_SUCCESS", "b"),
        rec(11, W, "pg statement"), rec(12, W, "task end", step="b"),
    ]
    (link,) = roundtrips.chain_links(sorted(records, key=lambda r: r["t0"]), ["a", "b"], RUN, "celery")
    assert [r["t0"] for r in link] == [3, 5, 6, 7, 9, 10]


def test_an_in_process_links_critical_path_runs_from_one_success_to_the_next():
    RUN = 1
    records = [write(1, RUN, "STEP_SUCCESS", "a"), rec(2, RUN, "pg statement"), rec(2.5, RUN, "s3 request", main=False),
               write(3, RUN, "STEP_START", "b"), write(4, RUN, "STEP_SUCCESS", "b"), rec(5, RUN, "pg statement")]  # fmt: skip
    (link,) = roundtrips.chain_links(records, ["a", "b"], RUN, "inprocess")
    assert [r["t0"] for r in link] == [2, 3, 4]
    assert roundtrips.link_summary([link])["median"] == 3


def test_a_multiprocess_chain_has_no_links_counted_and_says_so():
    """Its steps run in processes of their own with no task windows: the benchmark counts links for in-process
    and Celery only (``step_path`` runs chain10 on the multiprocess executor too, without --quick)."""
    records = [write(1, 1, "STEP_SUCCESS", "a"), write(2, 1, "STEP_SUCCESS", "b")]
    with pytest.raises(ValueError, match="inprocess, celery, not 'multiprocess'"):
        roundtrips.chain_links(records, ["a", "b"], 1, "multiprocess")


@pytest.mark.parametrize("thread, waited", [("MainThread", True), ("ThreadPoolExecutor-3_0", True), ("compute-log-upload", False)])
def test_only_threads_the_step_waits_for_are_on_its_path(thread, waited):
    import threading

    class T(threading.Thread):
        pass

    t = threading.main_thread() if thread == "MainThread" else T(name=thread)
    assert roundtrips._waited_for(t) is waited


def test_records_are_read_back_in_time_order_within_the_window(tmp_path):
    lines = [rec(3, 7, "pg statement"), rec(1, 7, "pg statement"), rec(9, 8, "pg statement")]
    (tmp_path / "7.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines[:2]) + '{"partial')
    (tmp_path / "8.jsonl").write_text(json.dumps(lines[2]) + "\n")
    assert [r["t0"] for r in roundtrips.read(tmp_path, 0, 5)] == [1, 3]
    assert [r["t0"] for r in roundtrips.read(tmp_path, 0, 10, pids={8})] == [9]

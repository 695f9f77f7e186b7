"""Compute-log capture in the image (dagster_celery_aws.compute_logs): a step's stdout and stderr
go to the captured files (then S3) and, complete, to the process's own streams (the container's log),
without the `tail` and watcher processes Dagster starts per capture."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

# Runs in a fresh process whose stdout/stderr are pipes read by the test (the "container log").
CAPTURE = textwrap.dedent(
    """
    import os, subprocess, sys
    import boto3
    from moto import mock_aws

    def no_processes(*args, **kwargs):
        raise AssertionError(f"a process was started: {args}")

    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="step-logs")
        from dagster_celery_aws.compute_logs import S3ComputeLogManager
        manager = S3ComputeLogManager(bucket="step-logs", local_dir=sys.argv[1], prefix="compute-logs", skip_empty_files=True)
        real_popen, subprocess.Popen = subprocess.Popen, no_processes
        with manager.capture_logs(["run", "compute_logs", "step"]):
            for i in range(200):
                print(f"out {i}", flush=True)
                print(f"err {i}", file=sys.stderr, flush=True)
            subprocess.Popen = real_popen
            subprocess.run(["sh", "-c", "echo child-out; echo child-err >&2"], check=True)  # fd-level output
            subprocess.Popen = no_processes
            print("last line, not flushed by the step")
        subprocess.Popen = real_popen
        s3 = boto3.client("s3", region_name="us-east-1")
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="step-logs")["Contents"])
        stored = {k: s3.get_object(Bucket="step-logs", Key=k)["Body"].read().decode() for k in keys}
    print("KEYS", keys, file=sys.__stderr__)
    for k, v in stored.items():
        print("STORED", k, v.count("\\n"), file=sys.__stderr__)
    """
)


def test_capture_mirrors_every_line_to_the_process_streams_and_uploads_them(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # no endpoint: moto in process
    env.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
    proc = subprocess.run([sys.executable, "-c", CAPTURE, str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out, err = proc.stdout.splitlines(), proc.stderr.splitlines()
    # every line, in order, on the process's own streams (Dagster's tail mirror can drop the last ones)
    assert out == [f"out {i}" for i in range(200)] + ["child-out", "last line, not flushed by the step"]
    assert [line for line in err if not line.startswith(("KEYS", "STORED"))] == [f"err {i}" for i in range(200)] + ["child-err"]
    stored = dict(line.split(" ")[1:] for line in err if line.startswith("STORED"))
    assert stored == {  # line counts, in dagster-aws's key layout
        "compute-logs/storage/run/compute_logs/step.out": "202",
        "compute-logs/storage/run/compute_logs/step.err": "201",
    }


def test_a_stream_without_a_descriptor_is_left_alone(tmp_path):
    """A stream with no file descriptor (a test runner's) cannot be redirected: Dagster's redirect leaves it
    as it is, and so does the mirror: no thread, no error, the output stays on the stream."""
    import io
    import threading

    from dagster_celery_aws.compute_logs import mirror_to_file

    stream = io.StringIO()
    threads = threading.active_count()
    with mirror_to_file(stream, str(tmp_path / "x.out")):
        stream.write("kept\n")
        assert threading.active_count() == threads
    assert stream.getvalue() == "kept\n" and (tmp_path / "x.out").read_text() == ""


def test_inside_a_celery_step_the_upload_runs_while_the_task_returns_and_is_waited_for(tmp_path, monkeypatch):
    """``deferring_uploads``: the end-of-capture upload runs in a thread (the capture's exit does not wait
    for it) and ``wait_for_uploads`` waits for it; outside the block it runs before the capture's exit
    returns, as dagster-aws's does. A failed deferred upload is logged, not raised."""
    import threading

    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager as Stock

    from dagster_celery_aws import compute_logs

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    manager = compute_logs.S3ComputeLogManager(bucket="b", local_dir=str(tmp_path))
    release, uploaded = threading.Event(), []

    def upload(self, log_key):
        assert release.wait(60), "never released"
        uploaded.append(tuple(log_key))

    monkeypatch.setattr(Stock, "_on_capture_complete", upload)
    with compute_logs.deferring_uploads() as pending:
        manager._on_capture_complete(["run", "step"])  # returns with the upload still blocked
        assert uploaded == [] and len(pending) == 1
    release.set()
    compute_logs.wait_for_uploads(pending)
    assert uploaded == [("run", "step")] and pending == []
    manager._on_capture_complete(["run", "other"])  # not deferred: done when it returns
    assert uploaded[-1] == ("run", "other")

    def failing(self, log_key):
        raise ConnectionError("S3 is down")

    monkeypatch.setattr(Stock, "_on_capture_complete", failing)
    with compute_logs.deferring_uploads() as pending:
        manager._on_capture_complete(["run", "third"])
    compute_logs.wait_for_uploads(pending)  # logged by the thread, not raised

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


def test_a_log_is_uploaded_with_one_request_below_the_multipart_threshold(tmp_path, monkeypatch):
    """A captured file below boto3's multipart threshold is stored with one PutObject (no transfer manager);
    at or above it, with dagster-aws's own ``upload_fileobj``. Either way the same object: key, bytes,
    content type, the configured extra arguments; empty files are skipped as dagster-aws skips them."""
    import boto3
    from moto import mock_aws

    from dagster_celery_aws import compute_logs

    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="step-logs")
        manager = compute_logs.S3ComputeLogManager(
            bucket="step-logs", local_dir=str(tmp_path), prefix="logs", skip_empty_files=True,
            upload_extra_args={"ServerSideEncryption": "AES256"},
        )  # fmt: skip
        calls = []
        for name in ("put_object", "upload_fileobj"):
            real = getattr(manager._s3_session, name)
            monkeypatch.setattr(manager._s3_session, name, lambda *a, _n=name, _r=real, **k: calls.append(_n) or _r(*a, **k))
        monkeypatch.setattr(compute_logs, "SINGLE_PUT_MAX_BYTES", 100)
        for step, err in (("small", b"x" * 99), ("large", b"y" * 100)):
            with manager.capture_logs(["run", step]):
                pass
            with open(manager.local_manager.get_captured_local_path(["run", step], "err"), "wb") as f:
                f.write(err)
            manager._on_capture_complete(["run", step])
            obj = s3.get_object(Bucket="step-logs", Key=f"logs/storage/run/{step}.err")
            assert obj["Body"].read() == err
            assert (obj["ContentType"], obj["ServerSideEncryption"]) == ("text/plain", "AES256")
        # the small file: one put_object; the large one: upload_fileobj (whose transfer sends its own PutObject);
        # stdout was empty both times: skipped
        assert calls == ["put_object", "upload_fileobj", "put_object"]
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="step-logs")["Contents"])
        assert keys == ["logs/storage/run/large.err", "logs/storage/run/small.err"]


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


def test_inside_a_celery_step_the_upload_outlives_the_step_and_is_waited_for_at_exit(tmp_path, monkeypatch):
    """``deferring_uploads``: the end-of-capture upload runs in a thread that outlives the block (the task
    returns, its result is stored and its message acknowledged meanwhile); at most ``MAX_PENDING_UPLOADS`` go
    at once (the next one waits for the oldest), and ``wait_for_uploads`` (a pool process's exit) waits for
    all. Outside the block the upload runs before the capture's exit returns, as dagster-aws's does. A failed
    deferred upload is logged, not raised."""
    import threading

    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager as Stock

    from dagster_celery_aws import compute_logs

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    manager = compute_logs.S3ComputeLogManager(bucket="b", local_dir=str(tmp_path))
    releases: dict[str, threading.Event] = {}
    uploaded = []

    def upload(self, log_key):
        assert releases.setdefault(log_key[-1], threading.Event()).wait(60), "never released"
        uploaded.append(log_key[-1])

    monkeypatch.setattr(Stock, "_on_capture_complete", upload)
    bound = compute_logs.MAX_PENDING_UPLOADS
    with compute_logs.deferring_uploads():
        for i in range(bound):
            manager._on_capture_complete(["run", f"s{i}"])  # returns with its upload blocked
    assert uploaded == [] and len(compute_logs._uploads) == bound

    oldest, waited = compute_logs._uploads[0], []

    class Oldest:  # the thread of upload s0, released only once the next upload waits for it
        def is_alive(self) -> bool:
            return oldest.is_alive()

        def join(self, timeout=None) -> None:
            waited.append(list(uploaded))
            releases.setdefault("s0", threading.Event()).set()
            oldest.join(timeout)

    compute_logs._uploads[0] = Oldest()
    with compute_logs.deferring_uploads():
        manager._on_capture_complete(["run", "extra"])  # one past the bound: waits for the oldest, and only it
    assert waited == [[]] and uploaded == ["s0"]  # it waited with nothing done, and returned once s0 was
    for key in [*(f"s{i}" for i in range(1, bound)), "extra"]:
        releases.setdefault(key, threading.Event()).set()
    compute_logs.wait_for_uploads(sender=None, pid=os.getpid(), exitcode=0)  # as worker_process_shutdown calls it
    assert sorted(uploaded) == sorted(["s0", *[f"s{i}" for i in range(1, bound)], "extra"])
    assert compute_logs._uploads == []
    releases.setdefault("other", threading.Event()).set()
    manager._on_capture_complete(["run", "other"])  # not deferred: done when it returns
    assert uploaded[-1] == "other"

    def failing(self, log_key):
        raise ConnectionError("S3 is down")

    monkeypatch.setattr(Stock, "_on_capture_complete", failing)
    with compute_logs.deferring_uploads():
        manager._on_capture_complete(["run", "third"])
    compute_logs.wait_for_uploads()  # logged by the thread, not raised

"""dagster-aws's S3 compute log manager, with a step's output mirrored by a thread instead of two processes.

Dagster captures a step's stdout and stderr into local files (uploaded to S3 when the step ends) and mirrors
them to the process's own stdout and stderr, so they also reach the container's log (CloudWatch). On POSIX
its mirror (dagster/_core/execution/compute_logs.py ``execute_posix_tail``) starts, for each stream, a
``tail -F`` process and a Python interpreter that watches for orphans, and stops both when the capture ends.
In-process execution captures once per run; a Celery worker captures once per step, so every step paid for
four process starts: measured here 47 ms of wall time and 60 ms of CPU per step, about half of a trivial
step's CPU in the worker (benchmarks/README.md).

``S3ComputeLogManager`` here is dagster-aws's class (same config, same S3 layout, same upload) whose local
capture mirrors each stream with a thread of the capturing process: the stream's file descriptor is
redirected to the file exactly as Dagster does it (``redirect_to_file``), and the thread copies what the file
gains to a duplicate of the original descriptor, until the capture ends and the file is drained. Nothing is
left behind if the process dies: the thread dies with it.

In a Celery step (``deferring_uploads``, used by the workers' task, dagster_celery_aws.fast_task), the upload
at the end of the capture runs in a thread of its own while the task returns and Celery stores its result; the
task waits for it after the result is stored and before its message is acknowledged (``wait_for_uploads``
in the task's ``after_return``). The run worker, told that the result is stored, sends the next step
meanwhile: the upload (two S3 requests, ~11 ms per step here, more against S3 itself) is no longer between a
step's end and the next step's start. A worker lost before the upload ends loses it, as before; an upload
that fails is logged, and no longer fails a step that has already succeeded.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from dagster._core.execution.compute_logs import redirect_to_file
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.local_compute_log_manager import IO_TYPE_EXTENSION, LocalComputeLogManager
from dagster._utils import ensure_file, touch_file
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager as _S3ComputeLogManager
from dagster_shared import seven

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2  # how often the mirror looks for new output (`tail -F` polls every 1 s)
CHUNK = 64 * 1024


@contextmanager
def mirror_to_file(stream, path: str) -> Iterator[None]:
    """Send ``stream`` (a file with a descriptor, e.g. sys.stdout) to ``path``, and copy it from there to
    where ``stream`` pointed before, as Dagster's ``mirror_stream_to_file`` does, without a subprocess."""
    ensure_file(path)
    try:
        original = os.dup(stream.fileno())
    except (AttributeError, OSError, ValueError):  # no descriptor (a test runner's stream): capture only
        with redirect_to_file(stream, path):
            yield
        return
    done = threading.Event()

    def pump() -> None:
        with open(path, "rb") as source:
            while True:
                chunk = source.read(CHUNK)
                if chunk:
                    os.write(original, chunk)
                elif done.is_set():
                    return
                else:
                    done.wait(POLL_SECONDS)

    thread = threading.Thread(target=pump, name=f"mirror-{os.path.basename(path)}", daemon=True)
    thread.start()
    try:
        with redirect_to_file(stream, path):
            yield
    finally:
        done.set()
        thread.join()
        os.close(original)


class ThreadMirroredLocalComputeLogManager(LocalComputeLogManager):
    """Dagster's local compute log manager; ``capture_logs`` mirrors with ``mirror_to_file``."""

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Iterator[CapturedLogContext]:
        outpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDOUT])
        errpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDERR])
        with mirror_to_file(sys.stdout, outpath), mirror_to_file(sys.stderr, errpath):
            yield CapturedLogContext(log_key)
        touch_file(self.complete_artifact_path(log_key))  # as Dagster's: marks the capture complete


_deferral = threading.local()


@contextmanager
def deferring_uploads() -> Iterator[list]:
    """In this block and this thread, a capture's upload (``S3ComputeLogManager._on_capture_complete``) runs in
    a thread of its own; yields the list of those threads, for ``wait_for_uploads``."""
    pending: list[threading.Thread] = []
    previous = getattr(_deferral, "pending", None)
    _deferral.pending = pending
    try:
        yield pending
    finally:
        _deferral.pending = previous


def wait_for_uploads(pending: list) -> None:
    while pending:
        pending.pop(0).join()


class S3ComputeLogManager(_S3ComputeLogManager):
    """``dagster_aws.s3.S3ComputeLogManager`` with ``ThreadMirroredLocalComputeLogManager`` as local capture.
    Configured in dagster.yaml as dagster-aws's (module ``dagster_celery_aws.compute_logs``). Inside
    ``deferring_uploads`` its end-of-capture upload runs in a thread."""

    def __init__(self, bucket, local_dir=None, **kwargs):
        super().__init__(bucket, local_dir=local_dir, **kwargs)
        # dagster-aws builds its local manager on the same directory (its own default: the temp directory)
        self._local_manager = ThreadMirroredLocalComputeLogManager(local_dir or seven.get_system_temp_directory())

    def _on_capture_complete(self, log_key: Sequence[str]):
        pending = getattr(_deferral, "pending", None)
        if pending is None:
            return super()._on_capture_complete(log_key)
        upload = super()._on_capture_complete

        def run() -> None:
            try:
                upload(log_key)
            except Exception:  # noqa: BLE001 - the step has ended: its logs are lost, the step is not
                log.exception("compute logs of %s: upload failed", "/".join(log_key))

        thread = threading.Thread(target=run, name=f"compute-log-upload-{log_key[-1]}", daemon=True)
        thread.start()
        pending.append(thread)

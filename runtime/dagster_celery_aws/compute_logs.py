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
at the end of the capture runs in a thread of its own while the task returns, Celery stores its result and
acknowledges the message, and the pool process takes its next step: the upload (two S3 requests, ~11 ms per
step here, more against S3 itself) no longer holds the step's slot, nor lies between a step's end and the next
step's start. A pool process keeps at most ``MAX_PENDING_UPLOADS`` of them going (the next step waits for the
oldest), and waits for all of them before it exits (``wait_for_uploads``, on Celery's
``worker_process_shutdown``: a warm shutdown, a scale-in, a recycled pool process). A worker killed outright
(SIGKILL, out of memory) loses an upload still going, as it lost it before; the step, whose result is stored
and whose message is acknowledged, is not run again for it. An upload that fails is logged, and does not fail
a step that has already succeeded.
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


# boto3's default multipart threshold (boto3/s3/transfer.py TransferConfig): below it, upload_fileobj sends one
# PutObject request too, after building a transfer manager and its thread pool for the call.
SINGLE_PUT_MAX_BYTES = 8 * 1024 * 1024
MAX_PENDING_UPLOADS = 4  # uploads still going per process before the next deferred one waits for the oldest
_deferral = threading.local()
_uploads: list[threading.Thread] = []  # this process's deferred uploads still going, oldest first
_uploads_lock = threading.Lock()


@contextmanager
def deferring_uploads() -> Iterator[None]:
    """In this block and this thread, a capture's upload (``S3ComputeLogManager._on_capture_complete``) runs in
    a thread of its own, which outlives the block."""
    previous = getattr(_deferral, "on", False)
    _deferral.on = True
    try:
        yield
    finally:
        _deferral.on = previous


def _defer(upload) -> None:
    """Run ``upload`` in a thread, once fewer than ``MAX_PENDING_UPLOADS`` are going in this process."""
    while True:
        with _uploads_lock:
            _uploads[:] = [t for t in _uploads if t.is_alive()]
            if len(_uploads) < MAX_PENDING_UPLOADS:
                thread = threading.Thread(target=upload, name="compute-log-upload", daemon=True)
                _uploads.append(thread)
                thread.start()
                return
            oldest = _uploads[0]
        oldest.join()


def wait_for_uploads(**_signal_kwargs) -> None:
    """Wait for this process's deferred uploads; a receiver of Celery's ``worker_process_shutdown``."""
    while True:
        with _uploads_lock:
            if not _uploads:
                return
            oldest = _uploads.pop(0)
        oldest.join()


class S3ComputeLogManager(_S3ComputeLogManager):
    """``dagster_aws.s3.S3ComputeLogManager`` with ``ThreadMirroredLocalComputeLogManager`` as local capture.
    Configured in dagster.yaml as dagster-aws's (module ``dagster_celery_aws.compute_logs``). Inside
    ``deferring_uploads`` its end-of-capture upload runs in a thread (``_defer``)."""

    def __init__(self, bucket, local_dir=None, **kwargs):
        super().__init__(bucket, local_dir=local_dir, **kwargs)
        # dagster-aws builds its local manager on the same directory (its own default: the temp directory)
        self._local_manager = ThreadMirroredLocalComputeLogManager(local_dir or seven.get_system_temp_directory())

    def _upload_file_obj(self, data, log_key: Sequence[str], io_type: ComputeIOType, partial=False):
        """dagster-aws's upload (same key, same arguments, same skipping of empty files), with a file below
        ``SINGLE_PUT_MAX_BYTES`` sent by ``put_object``: the one request ``upload_fileobj`` would send, at 2.6 ms
        of CPU instead of 4.5 (benchmarks/README.md). A larger file takes dagster-aws's multipart upload."""
        size = os.fstat(data.fileno()).st_size
        if size >= SINGLE_PUT_MAX_BYTES:
            return super()._upload_file_obj(data, log_key, io_type, partial)
        if (self._skip_empty_files or partial) and size == 0:
            return
        extra_args = {"ContentType": "text/plain", **(self._upload_extra_args or {})}
        key = self._s3_key(log_key, io_type, partial=partial)
        self._s3_session.put_object(Bucket=self._s3_bucket, Key=key, Body=data, **extra_args)

    def _on_capture_complete(self, log_key: Sequence[str]):
        if not getattr(_deferral, "on", False):
            return super()._on_capture_complete(log_key)
        upload = super()._on_capture_complete

        def run() -> None:
            try:
                upload(log_key)
            except Exception:  # noqa: BLE001 - the step has ended: its logs are lost, the step is not
                log.exception("compute logs of %s: upload failed", "/".join(log_key))

        _defer(run)

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
"""

from __future__ import annotations

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


class S3ComputeLogManager(_S3ComputeLogManager):
    """``dagster_aws.s3.S3ComputeLogManager`` with ``ThreadMirroredLocalComputeLogManager`` as local capture.
    Configured in dagster.yaml as dagster-aws's (module ``dagster_celery_aws.compute_logs``)."""

    def __init__(self, bucket, local_dir=None, **kwargs):
        super().__init__(bucket, local_dir=local_dir, **kwargs)
        # dagster-aws builds its local manager on the same directory (its own default: the temp directory)
        self._local_manager = ThreadMirroredLocalComputeLogManager(local_dir or seven.get_system_temp_directory())

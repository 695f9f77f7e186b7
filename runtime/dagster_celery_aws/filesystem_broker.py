"""The local runner's embedded broker: kombu's ``filesystem://`` transport, with every message file whole before a
consumer can see it.

kombu's filesystem channel creates a message's file in the data folder first and writes the message into it after;
a consumer that lists the folder in between moves the empty file away, reads it, and its worker's consumer loop dies
on ``JSONDecodeError: Expecting value`` (kombu 5.x ``kombu/transport/filesystem.py``: ``_put`` writes under a lock
that ``_get`` never takes; reported as kombu issue #1551, open: https://github.com/celery/kombu/issues/1551). Under
load the runner saw a Celery worker exit that way a few seconds after a run started.

Here a message is written to a hidden file no queue's name pattern matches, then renamed to its message name in the
same folder; rename(2) within one file system is atomic (POSIX), so a consumer finds either nothing or all of it.
The runner selects this transport with Celery's ``broker_transport`` (which kombu's ``Connection`` takes over the URL's
scheme) for every process: workers, run workers, the daemon and the CLI.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

TRANSPORT = f"{__name__}:Transport"  # the value of Celery's broker_transport setting


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # The name kombu's _get looks for: sorted by its millisecond prefix, "<queue>.msg" after the first dot.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        try:
            fd, staged = tempfile.mkstemp(prefix=".", suffix=".part", dir=self.data_folder_out)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(str_to_bytes(dumps(payload)))
                os.replace(staged, os.path.join(self.data_folder_out, name))
            except BaseException:
                os.unlink(staged)
                raise
        except OSError as exc:
            raise ChannelError(f"Cannot add message {name!r} to {self.data_folder_out!r}") from exc


class Transport(filesystem.Transport):
    Channel = Channel

"""The embedded broker's transport (dagster_celery_aws.filesystem_broker): a consumer never reads a message file that
is still being written -- with kombu's own channel it could, and the worker that read the empty file died."""

from __future__ import annotations

import os
from queue import Empty

import pytest
from kombu import Connection

from dagster_celery_aws import filesystem_broker
from infra.local import services

QUEUE = "gpu.small"  # a dot in the queue name, as the message file's name pattern must allow


@pytest.fixture
def overrides(tmp_path) -> dict:
    """The Celery settings the runner gives every process for its embedded broker."""
    svc = services.Services(env={}, celery_overrides={}, storage=None, s3_endpoint="")
    services._broker(None, tmp_path, svc)
    assert svc.env[services.contract.BROKER_URL] == "filesystem://"
    return svc.celery_overrides["config_source"]


def test_a_consumer_sees_no_message_until_it_is_whole_then_all_of_it(overrides, monkeypatch):
    # As Celery opens it from the runner's settings: the URL's scheme, the transport setting over it.
    options = overrides["broker_transport_options"]
    with Connection("filesystem://", transport=overrides["broker_transport"], transport_options=options) as conn:
        assert isinstance(conn.transport, filesystem_broker.Transport)
        producer, consumer = conn.channel(), conn.channel()
        seen_while_writing = []
        real_replace = os.replace

        def replace(src, dst):  # the instant before the message gets its name: the content is all written
            with pytest.raises(Empty):  # kombu's "nothing on this queue"
                consumer._get(QUEUE)
            seen_while_writing.append(sorted(os.listdir(options["data_folder_out"])))
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        payload = {"body": "x" * 100_000, "properties": {"delivery_tag": "1"}}
        producer._put(QUEUE, payload)
        assert len(seen_while_writing) == 1, "the message was not staged and renamed into place"
        (staged,) = seen_while_writing[0]
        assert staged.startswith(".") and staged.endswith(".part")
        assert consumer._get(QUEUE) == payload
        assert os.listdir(options["data_folder_in"]) == []


def test_a_message_that_cannot_be_written_leaves_no_file(overrides):
    options = overrides["broker_transport_options"]
    with Connection("filesystem://", transport=overrides["broker_transport"], transport_options=options) as conn:
        with pytest.raises(TypeError):
            conn.channel()._put(QUEUE, {"body": object()})  # not JSON
        assert os.listdir(options["data_folder_out"]) == []

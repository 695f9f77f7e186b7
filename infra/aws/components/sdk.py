"""The AWS SDK for our dynamic resources (components/service_logs.py, components/image.py): they run in the program
with the credentials `pulumi up` runs with -- boto3's default chain, and the stack's ``aws:profile`` when it sets
one -- in the stack's Region, both passed as inputs (``region``, ``profile``). Like the providers, ``client`` is
stored in Pulumi's state by value, so `pulumi refresh` and `pulumi destroy` need none of this project's modules."""

from __future__ import annotations

import boto3
import pulumi
import pulumi_aws as aws


def where() -> dict:
    """The inputs that say where a dynamic resource calls AWS."""
    return {"region": aws.get_region_output().region, "profile": pulumi.Config("aws").get("profile") or ""}


def _client_function():
    # Defined in a function, as the providers that call it (components/guard.py): dill stores it in the state by
    # value with them, naming boto3 only.
    def client(service: str, props: dict):
        session = boto3.session.Session(profile_name=props.get("profile") or None, region_name=props["region"])
        return session.client(service)

    return client


client = _client_function()

"""Guard: refuse, before anything changes, a config change that AWS would refuse halfway through an update.

Creates one dynamic resource holding the values whose changes matter (infra/transitions.py). Pulumi calls its
``check`` with the values of the last deployment and the new ones during the preview that precedes every
``pulumi up``; a refused transition fails the preview, naming the key and what to do, and nothing is touched.
"""

from __future__ import annotations

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, ResourceProvider, UpdateResult

from infra import transitions


class _Provider(ResourceProvider):
    serialize_as_secret_always = False  # nothing secret in it

    def check(self, olds, news):
        failures = [CheckFailure(key, message) for key, message in transitions.problems(olds, news)]
        return CheckResult(news, failures)

    def create(self, props):
        return CreateResult("transitions", props)

    def update(self, _id, _olds, news):
        return UpdateResult(news)


class Guard(pulumi.dynamic.Resource):
    def __init__(self, name: str, values: dict, opts: pulumi.ResourceOptions | None = None):
        super().__init__(_Provider(), name, values, opts)

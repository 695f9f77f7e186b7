"""Guard: refuse, before anything changes, a config change that AWS would refuse halfway through an update.

Creates one dynamic resource holding the values whose changes matter (infra/stackfile/transitions.py). Pulumi calls its
``check`` with the values of the last deployment and the new ones during the preview that precedes every
``pulumi up``; a refused transition fails the preview, naming the key and what to do, and nothing is touched.

Two things make the recorded values trustworthy:
- They are recorded last: the guard depends on every other resource of the stack, so Pulumi updates it only
  once all of them succeeded. A `pulumi up` that fails halfway keeps the values of the last complete deployment,
  and the next preview still compares against what is deployed. (The check itself runs in the preview;
  `pulumi up --skip-preview` has none.)
- Its provider is stored in the state by value: Pulumi keeps a dynamic provider as a dill pickle and unpickles
  the state's copy on `pulumi refresh` and `pulumi destroy`. A class pickled by reference would name this module,
  and a renamed module would break both; this one names only Pulumi's own classes, and ``check`` imports the
  rules when it runs -- which is only ever with the provider of the current program (the preview's new inputs).
"""

from __future__ import annotations

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, ResourceProvider, UpdateResult


def _provider_class() -> type[ResourceProvider]:
    # Defined in a function: its qualified name cannot be imported, so dill pickles the class and its methods by
    # value, with the globals they use (Pulumi's classes, by reference) and no module of this project.
    class GuardProvider(ResourceProvider):
        serialize_as_secret_always = False  # nothing secret in it

        def check(self, olds, news):
            from infra.stackfile import transitions  # at run time: not part of the pickle

            return CheckResult(news, [CheckFailure(key, message) for key, message in transitions.problems(olds, news)])

        def create(self, props):
            return CreateResult("transitions", props)

        def update(self, _id, _olds, news):
            return UpdateResult(news)

    return GuardProvider


# A state written before the providers were stored by value names their old modules (infra/components/...), gone
# since infra/ was arranged in rooms: the next `pulumi up` stores this provider in their place (docs/deployment.md,
# "Upgrading"); until then `pulumi refresh` and `pulumi destroy` of such a stack fail on the missing module.
_Provider = _provider_class()


class Guard(pulumi.dynamic.Resource):
    def __init__(self, name: str, values: dict, opts: pulumi.ResourceOptions | None = None):
        super().__init__(_Provider(), name, values, opts)

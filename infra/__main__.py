"""The Pulumi program (``Pulumi.yaml``: ``main: infra/``): validate the stack config, then declare the stack."""

import pulumi

from infra.stackfile import config
from infra.aws import stack
from infra.tools import validate

try:
    cfg = config.from_pulumi()
    if pulumi.runtime.is_dry_run():
        # The preview (`pulumi preview`, and `pulumi up`'s before it asks) checks the code as `make validate`
        # does, before any resource is declared: requirements against the image's pins, every job's queues.
        found = validate.check_code(cfg, stack.PROJECT_DIR, stack.PROJECT_DIR / ".build" / "validate")
        for warning in found.warnings:
            pulumi.log.warn(warning)
        if found.errors:
            raise config.ConfigError(found.errors, "the code of the stack")
    outputs = stack.build(cfg)
except config.ConfigError as err:
    # Raised before any resource is declared: nothing is created, changed or deleted.
    raise pulumi.RunError(str(err)) from None

for key, value in outputs.items():
    pulumi.export(key, value)

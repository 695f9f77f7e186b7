"""The Pulumi program (``Pulumi.yaml``: ``main: infra/``): validate the stack config, then declare the stack."""

import pulumi

from infra import config, stack

try:
    cfg = config.from_pulumi()
    outputs = stack.build(cfg)
except config.ConfigError as err:
    # Raised before any resource is declared: nothing is created, changed or deleted.
    raise pulumi.RunError(str(err)) from None

for key, value in outputs.items():
    pulumi.export(key, value)

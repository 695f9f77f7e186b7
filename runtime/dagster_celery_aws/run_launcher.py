"""dagster-aws's EcsRunLauncher, with each run free to start in any of the stack's task subnets.

The stock launcher copies the network settings of the task that launches the run: the daemon's, which sits
in one subnet, so every run would start in the daemon's Availability Zone. With ``DCA_RUN_SUBNETS``
(comma-separated subnet ids, set on the daemon by the stack) a run may start in any of them: ECS places each
task in one of the subnets it is given (RunTask, ``awsvpcConfiguration.subnets``). Everything else --
cluster, security groups, public IP, the task definition -- is the stock launcher's.
"""

from __future__ import annotations

import os

from dagster_aws.ecs import EcsRunLauncher as StockEcsRunLauncher

RUN_SUBNETS = "DCA_RUN_SUBNETS"  # infra/contract.py RUN_SUBNETS (the image ships without infra/)


class EcsRunLauncher(StockEcsRunLauncher):
    def _run_task_kwargs(self, run, image, container_context):
        kwargs = super()._run_task_kwargs(run, image, container_context)
        subnets = [s for s in os.environ.get(RUN_SUBNETS, "").split(",") if s]
        network = kwargs.get("networkConfiguration")
        if subnets and network:
            network["awsvpcConfiguration"]["subnets"] = subnets
        return kwargs

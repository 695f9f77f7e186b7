"""The example's assets: what the UI's Materialize and backfills run, on the queues like any job.

Two groups with dependencies across them: ``ingest`` (``orders``, on queue ``dagster``) feeds ``analytics``
(``order_totals`` on queue ``heavy``, routed by ``op_tags``: Dagster gives an op's tags, not an asset's
``tags``, to the step, and dagster-celery routes by the step's tags), with a check on the totals. The executor
is the one on ``Definitions`` (``dagster_project/__init__.py``), so the implicit asset job is on Celery too.
"""

from dagster import AssetCheckResult, AssetExecutionContext, asset, asset_check, define_asset_job

from dagster_project.example import HEAVY_QUEUE, QUEUE_TAG, _where


@asset(group_name="ingest", op_tags={QUEUE_TAG: "dagster"})
def orders(context: AssetExecutionContext) -> list[int]:
    context.log.info(f"orders on {_where()}")
    return [3, 5, 8]


@asset(group_name="analytics", op_tags={QUEUE_TAG: HEAVY_QUEUE})
def order_totals(context: AssetExecutionContext, orders: list[int]) -> dict:
    context.log.info(f"order_totals on {_where()}")
    return {"count": len(orders), "total": sum(orders)}


@asset_check(asset=order_totals)
def totals_add_up(order_totals: dict) -> AssetCheckResult:
    return AssetCheckResult(passed=order_totals["total"] >= order_totals["count"] >= 0)


assets_job = define_asset_job("assets_job", selection=["orders", "order_totals"])

"""Dagster glue for the schema drift domain. (No `from __future__ import annotations`: Dagster reads the
context type hint at definition time.)"""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from resources import environment
from resources.warehouse import WarehouseResource
from waldinger_assets.schema_drift.inventory import inventory_from_counts, inventory_queries


@asset(
    key=["waldinger", "schema_drift", "warehouse_inventory"],
    group_name="schema_drift",
    kinds={"snowflake", "python"},
    description="How many schemas, tables, views and columns each configured database holds.",
)
def warehouse_inventory(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    inventories = []
    with warehouse.get_connection() as connection:
        cursor = connection.cursor()
        for database in environment.configured_databases():
            counts = {}
            for view, query in inventory_queries(database).items():
                cursor.execute(query)
                counts[view] = cursor.fetchone()[0]
            inventories.append(inventory_from_counts(database, counts))
    table = "\n".join(
        ["| database | schemas | tables | views | columns |", "|---|---:|---:|---:|---:|"]
        + [f"| {i.database} | {i.schemas} | {i.tables} | {i.views} | {i.columns} |" for i in inventories]
    )
    context.log.info(f"inventoried {len(inventories)} databases")
    return MaterializeResult(
        metadata={
            "objects": MetadataValue.int(sum(i.objects for i in inventories)),
            "columns": MetadataValue.int(sum(i.columns for i in inventories)),
            "databases": MetadataValue.int(len(inventories)),
            "schemas": MetadataValue.int(sum(i.schemas for i in inventories)),
            "inventory": MetadataValue.md(table),
        }
    )

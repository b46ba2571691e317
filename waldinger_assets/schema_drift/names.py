"""Asset keys and check names of the schema drift domain, as constants: the assets, the gate, the jobs, the
sensors and the tests refer to the same names."""

SNAPSHOT_KEY = ["waldinger", "schema_drift", "schema_snapshot"]
DRIFT_REPORT_KEY = ["waldinger", "schema_drift", "drift_report"]
CONTRACT_CHECK = "contract_objects_have_no_breaking_drift"
WAREHOUSE_CHECK = "warehouse_matches_baseline"

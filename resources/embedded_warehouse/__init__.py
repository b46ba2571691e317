"""The embedded Snowflake (fakesnow over DuckDB files) that the local environment runs on."""

"""Schema drift: what the configured Snowflake databases contain, and how it differs from the baseline."""

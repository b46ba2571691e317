"""Asset keys and tables of the batch domain, as constants: the assets, jobs, sensors, the demo seed and the
tests refer to the same names. Asset keys mirror where the data lives ([database, schema, table])."""

BATCH_INPUT_TABLE = ("WALDINGER", "LLM", "PROMPTS")  # written by upstream systems; the pipeline only reads it
BATCH_OUTPUT_TABLE = ("WALDINGER", "LLM", "BATCH_OUTPUTS")
BATCH_INPUT_KEY = ["waldinger", "batch", "batch_input"]
BATCH_OUTPUTS_KEY = list(BATCH_OUTPUT_TABLE)

"""What changed in the batch input table, per PROMPT_DATE, for the batch input sensor: one aggregate query
(rows and a hash sum per day) instead of reading the rows. Pure apart from the one query."""

from __future__ import annotations

import datetime as dt

from resources.snowflake_sql import qualified_name
from waldinger_assets.batch.names import BATCH_INPUT_TABLE
from waldinger_assets.schema_drift.fingerprint import HASH_MODULUS

# A day whose rows were all deleted: its outputs must be replaced by nothing.
NO_ROWS = "0:0"


def input_fingerprint_sql() -> str:
    return (
        f'SELECT "PROMPT_DATE", COUNT(*), SUM(MOD(HASH("PROMPT_ID", "PROMPT", "CREATED_AT"), {HASH_MODULUS})) '
        f'FROM {qualified_name(*BATCH_INPUT_TABLE)} WHERE "PROMPT_DATE" BETWEEN %s AND %s GROUP BY 1'
    )


def input_fingerprints(connection, first_day: dt.date, last_day: dt.date) -> dict[str, str]:
    """{YYYY-MM-DD: "<rows>:<hash sum>"} for every day from first_day to last_day that has input rows."""
    cursor = connection.cursor()
    cursor.execute(input_fingerprint_sql(), (first_day, last_day))
    return {
        (day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))).isoformat(): (
            f"{int(rows)}:{int(float(total or 0))}"
        )
        for day, rows, total in cursor.fetchall()
    }


def changed_days(seen: dict[str, str], current: dict[str, str]) -> dict[str, str]:
    """Days whose input differs from what was seen: new days, changed days, and days whose rows all went
    (their fingerprint becomes NO_ROWS so their outputs are replaced by nothing)."""
    changed = {day: fingerprint for day, fingerprint in current.items() if seen.get(day) != fingerprint}
    for day, fingerprint in seen.items():
        if day not in current and fingerprint != NO_ROWS:
            changed[day] = NO_ROWS
    return dict(sorted(changed.items()))

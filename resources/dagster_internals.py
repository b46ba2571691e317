"""Every name this project takes from Dagster's private modules (`dagster._...`), in one place.

Dagster does not export these at its top level, and a minor release may move them. Importing them only from
here means an upgrade that moves one fails in this module, and `tests/test_dagster_internals.py` pins each
import, instead of breaking a sensor, the drift gate or the run launcher at run time.
"""

from dagster._core.errors import DagsterInvalidConfigError, DagsterPipesExecutionError
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.tags import RUN_KEY_TAG
from dagster._serdes.config_class import ConfigurableClassData
from dagster._utils.cached_method import cached_method
from dagster._utils.schedules import is_valid_cron_string

__all__ = [
    "RUN_KEY_TAG",
    "AssetCheckExecutionRecordStatus",
    "ConfigurableClassData",
    "DagsterInvalidConfigError",
    "DagsterPipesExecutionError",
    "cached_method",
    "is_valid_cron_string",
]

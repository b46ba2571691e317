"""Where asset values live between steps and between runs: Dagster's IO manager, keyed by the run (and the
partition) that produced each value.

Locally the values are files under the IO storage directory (Dagster's filesystem IO manager); in prod they
are blobs in an ADLS Gen2 container (dagster-azure's ADLS2 IO manager) that the Dagster daemon's runs and CI's
runs share, so a value CI materialized is the value a later daemon run loads.

Both stock IO managers keep one value per asset (or partition): with several runs at once, one run would load
another's snapshot. Here every value is stored at `<asset key>/<partition>/<run id>` and an input is loaded from
the run that produced it: this run when it materialized the upstream asset itself, otherwise the run of the
upstream's latest materialization in Dagster's event log (per partition). Nothing is found by "the latest file".

A pandas DataFrame is stored as Parquet (`<run id>.parquet`, pyarrow), readable by any tool; every other value is
pickled, as the stock IO managers do.

A partitioned asset that materializes several partitions in one run (BackfillPolicy.single_run) returns a dict
of partition key -> value; each partition is stored on its own, and a downstream asset that reads several
partitions gets the same kind of dict back.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInvariantViolationError,
    Failure,
    FilesystemIOManager,
    InitResourceContext,
    InputContext,
    IOManager,
    MetadataValue,
    OutputContext,
)

UNPARTITIONED = "__unpartitioned__"
# Input metadata (AssetIn(metadata={DEFER_MISSING: True})): a missing value loads as a MissingValue for the asset
# to decide on, e.g. after it has checked something that explains why the value is missing (the drift gate).
DEFER_MISSING = "waldinger/defer_missing_values"


@dataclass(frozen=True)
class MissingValue:
    """Stands for a value that is not there, when the input asked to decide itself (DEFER_MISSING)."""

    message: str

    def fail(self) -> None:
        raise Failure(self.message, allow_retries=False)


PARQUET_SUFFIX = ".parquet"


def _is_data_frame(obj: Any) -> bool:
    return type(obj).__name__ == "DataFrame" and type(obj).__module__.startswith("pandas")


def _parquet_bytes(frame: Any) -> bytes:
    import io

    import pyarrow
    import pyarrow.parquet

    buffer = io.BytesIO()
    pyarrow.parquet.write_table(pyarrow.Table.from_pandas(frame, preserve_index=False), buffer)
    return buffer.getvalue()


def _data_frame(data: bytes) -> Any:
    import io

    import pyarrow.parquet

    return pyarrow.parquet.read_table(io.BytesIO(data)).to_pandas()


class RunScopedValues(IOManager):
    """Stores and loads values through a UPath-based IO manager's files, at run-scoped paths."""

    def __init__(
        self,
        files: Any,
        base_path: Any,
        write_bytes: Callable[[Any, bytes], None] | None = None,
        read_bytes: Callable[[Any], bytes] | None = None,
    ) -> None:
        self._files = files  # a dagster UPathIOManager: dump_to_path, load_from_path, path_exists, make_directory
        self._base_path = base_path
        # Raw files (Parquet) beside the pickles: the storage's own way to write and read bytes at a path.
        self._write_bytes = write_bytes or (lambda path, data: path.write_bytes(data))
        self._read_bytes = read_bytes or (lambda path: path.read_bytes())

    def value_path(self, asset_key: AssetKey, partition: str | None, run_id: str):
        return self._base_path.joinpath(*asset_key.path, partition or UNPARTITIONED, run_id)

    def _dump(self, context: OutputContext, value: Any, path: Any) -> None:
        if _is_data_frame(value):
            self._write_bytes(path.with_name(path.name + PARQUET_SUFFIX), _parquet_bytes(value))
        else:
            self._files.dump_to_path(context=context, obj=value, path=path)

    def _exists(self, path: Any) -> bool:
        return self._files.path_exists(path) or self._files.path_exists(path.with_name(path.name + PARQUET_SUFFIX))

    def _read(self, context: InputContext, path: Any) -> Any:
        parquet = path.with_name(path.name + PARQUET_SUFFIX)
        if self._files.path_exists(parquet):
            return _data_frame(self._read_bytes(parquet))
        return self._files.load_from_path(context=context, path=path)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:  # an asset that returned nothing (MaterializeResult) stores nothing
            return
        values = _values_by_partition(context, obj)
        for partition, value in values.items():
            path = self.value_path(context.asset_key, partition, context.run_id)
            self._files.make_directory(path.parent)
            self._dump(context, value, path)
        context.add_output_metadata(
            {"value_run_id": MetadataValue.text(context.run_id), "stored_partitions": MetadataValue.int(len(values))}
        )

    def load_input(self, context: InputContext) -> Any:
        asset_key = context.asset_key
        if not context.has_asset_partitions:
            return self._load(context, asset_key, None)
        keys = list(context.asset_partition_keys)
        return {partition: self._load(context, asset_key, partition) for partition in keys}

    def _load(self, context: InputContext, asset_key: AssetKey, partition: str | None) -> Any:
        # This run's own value, or (re-executing a run) the value of the run it re-executes.
        for run_id in _runs_that_may_have_produced_it(context):
            path = self.value_path(asset_key, partition, run_id)
            if self._exists(path):
                return self._read(context, path)
        run_id = producing_run(context.instance, asset_key, partition)
        where = f"{asset_key.to_user_string()}" + (f" partition {partition}" if partition else "")
        path = self.value_path(asset_key, partition, run_id) if run_id else None
        if path is not None and self._exists(path):
            return self._read(context, path)
        if run_id is None:
            message = f"{where} has never been materialized: materialize it first (or in the same run)."
        else:
            message = (
                f"The value of {where} materialized by run {run_id} is not in the IO storage ({path}). The run "
                "may have used other IO storage (WALDINGER_IO_DIR locally, the ADLS2 container in prod): "
                f"materialize {asset_key.to_user_string()} again with this instance's storage."
            )
        if (context.definition_metadata or {}).get(DEFER_MISSING):
            return MissingValue(message)
        # Not retried: the value does not appear by trying again.
        raise Failure(message, allow_retries=False)


def _runs_that_may_have_produced_it(context: InputContext) -> list[str]:
    try:
        runs = [context.step_context.run_id]
    except DagsterInvariantViolationError:  # loaded outside a run (Definitions.load_asset_value, the CLI)
        return []
    upstream = context.upstream_output
    try:
        source = upstream.run_id if upstream is not None else None
    except DagsterInvariantViolationError:  # no run known for an upstream outside this run
        source = None
    if source and source not in runs:
        runs.append(source)
    return runs


def producing_run(instance, asset_key: AssetKey, partition: str | None) -> str | None:
    """The run of the latest materialization of this asset (partition), from Dagster's event log."""
    records_filter = AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition] if partition else None)
    records = instance.fetch_materializations(records_filter, limit=1).records
    return records[0].run_id if records else None


def _values_by_partition(context: OutputContext, obj: Any) -> dict[str | None, Any]:
    if not context.has_asset_partitions:
        return {None: obj}
    keys = list(context.asset_partition_keys)
    if isinstance(obj, dict) and set(obj) == set(keys):
        return dict(obj)
    if len(keys) == 1:
        return {keys[0]: obj}
    raise Failure(
        f"{context.asset_key.to_user_string()} materialized {len(keys)} partitions in one run but returned a "
        f"{type(obj).__name__}: return a dict of partition key -> value."
    )


class LocalAssetValuesIOManager(FilesystemIOManager):
    """Asset values as files under `base_dir` (Parquet for DataFrames, pickles otherwise), at run-scoped paths
    (see the module docstring)."""

    def create_io_manager(self, context: InitResourceContext) -> RunScopedValues:
        from upath import UPath

        return RunScopedValues(super().create_io_manager(context), UPath(self.base_dir))

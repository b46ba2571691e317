"""The run-scoped IO manager (resources/asset_values.py) on plain assets: values keyed by the run and partition
that produced them, several partitions from one run, a later run loading an earlier run's value, and the prod
variant on dagster-azure's ADLS2 storage (its own fake of the Data Lake clients, at the SDK boundary)."""

from dagster import (
    AssetIn,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    Definitions,
    asset,
    materialize,
)

from resources.asset_values import UNPARTITIONED, LocalAssetValuesIOManager

days = DailyPartitionsDefinition(start_date="2026-11-01", end_offset=1)
RANGE = ["2026-11-01", "2026-11-02", "2026-11-03"]


@asset(key=["values", "numbers"])
def numbers(context) -> list[str]:
    return [context.run.run_id]  # the value names the run that produced it


@asset(key=["values", "summary"], ins={"numbers": AssetIn(key=["values", "numbers"])})
def summary(numbers: list[str]) -> list[str]:
    return numbers


@asset(key=["values", "daily"], partitions_def=days, backfill_policy=BackfillPolicy.single_run())
def daily(context) -> dict:
    return {key: f"{key}@{context.run.run_id}" for key in context.partition_keys}


@asset(
    key=["values", "daily_total"],
    ins={"daily": AssetIn(key=["values", "daily"])},
    partitions_def=days,
    backfill_policy=BackfillPolicy.single_run(),
)
def daily_total(daily: dict) -> dict:
    return dict(daily)


def _range_tags() -> dict[str, str]:
    return {"dagster/asset_partition_range_start": RANGE[0], "dagster/asset_partition_range_end": RANGE[-1]}


def test_an_unpartitioned_value_is_stored_under_its_run_and_loaded_by_a_later_run(tmp_path):
    instance = DagsterInstance.ephemeral()
    io = LocalAssetValuesIOManager(base_dir=str(tmp_path))
    first = materialize([numbers], instance=instance, resources={"io_manager": io})
    later = materialize([numbers.to_source_asset(), summary], instance=instance, resources={"io_manager": io})
    assert first.success and later.success
    assert later.output_for_node("values__summary") == [first.run_id], "the later run loaded the first run's value"
    stored = tmp_path / "values" / "numbers" / UNPARTITIONED / first.run_id
    assert stored.is_file()


def test_several_partitions_of_one_run_are_stored_one_by_one_and_loaded_as_a_dict(tmp_path):
    instance = DagsterInstance.ephemeral()
    io = LocalAssetValuesIOManager(base_dir=str(tmp_path))
    job = Definitions(assets=[daily, daily_total], resources={"io_manager": io}).resolve_implicit_global_asset_job_def()
    run = job.execute_in_process(instance=instance, tags=_range_tags())
    assert run.success
    for key in RANGE:
        assert (tmp_path / "values" / "daily" / key / run.run_id).is_file()
    assert run.output_for_node("values__daily_total") == {key: f"{key}@{run.run_id}" for key in RANGE}

    # One day again, alone: its downstream in a run of its own loads the new value of that day only.
    again = job.execute_in_process(instance=instance, partition_key=RANGE[1], asset_selection=[daily.key])
    alone = job.execute_in_process(instance=instance, partition_key=RANGE[1], asset_selection=[daily_total.key])
    assert alone.output_for_node("values__daily_total") == {RANGE[1]: f"{RANGE[1]}@{again.run_id}"}


def test_a_partition_never_materialized_fails_with_what_to_do(tmp_path):
    instance = DagsterInstance.ephemeral()
    io = LocalAssetValuesIOManager(base_dir=str(tmp_path))
    job = Definitions(assets=[daily, daily_total], resources={"io_manager": io}).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance, partition_key=RANGE[0], asset_selection=[daily_total.key], raise_on_error=False
    )
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert "values/daily partition 2026-11-01 has never been materialized" in str(failure.step_failure_data.error)


def test_several_partitions_returned_without_a_dict_is_an_error(tmp_path):
    @asset(key=["values", "bad"], partitions_def=days, backfill_policy=BackfillPolicy.single_run())
    def bad() -> list:
        return [1, 2, 3]

    job = Definitions(
        assets=[bad], resources={"io_manager": LocalAssetValuesIOManager(base_dir=str(tmp_path))}
    ).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(instance=DagsterInstance.ephemeral(), tags=_range_tags(), raise_on_error=False)
    assert not result.success
    assert "return a dict of partition key -> value" in str(result.get_step_failure_events()[0].step_failure_data.error)


def test_the_prod_variant_keeps_values_in_the_adls2_file_system_by_run():
    """dagster-azure's ADLS2 IO manager files (its own fake Data Lake clients, shared by three runs)."""
    from dagster import IOManagerDefinition
    from dagster_azure.adls2 import PickledObjectADLS2IOManager
    from dagster_azure.blob.fake_blob_client import FakeBlobServiceClient
    from dagster_azure.fakes.fake_adls2_resource import FakeADLS2ServiceClient, FakeLeaseClient
    from upath import UPath

    from resources.asset_values import RunScopedValues

    data_lake = FakeADLS2ServiceClient("stwaldingerio")
    files = PickledObjectADLS2IOManager(
        "dagster-io", data_lake, FakeBlobServiceClient("stwaldingerio"), FakeLeaseClient, "dagster"
    )
    io = IOManagerDefinition.hardcoded_io_manager(RunScopedValues(files, UPath("dagster")))
    instance = DagsterInstance.ephemeral()
    first = materialize([numbers], instance=instance, resources={"io_manager": io})
    second = materialize([numbers], instance=instance, resources={"io_manager": io})
    later = materialize([numbers.to_source_asset(), summary], instance=instance, resources={"io_manager": io})
    assert first.success and second.success and later.success
    stored = set(data_lake.get_file_system_client("dagster-io").keys())
    assert {
        f"dagster/values/numbers/{UNPARTITIONED}/{first.run_id}",
        f"dagster/values/numbers/{UNPARTITIONED}/{second.run_id}",
        f"dagster/values/summary/{UNPARTITIONED}/{later.run_id}",
    } <= stored
    assert later.output_for_node("values__summary") == [second.run_id], "the latest materialization's value"


def test_the_prod_io_manager_builds_on_the_adls2_resource():
    from dagster_azure.fakes import FakeADLS2Resource

    from resources.asset_values_adls2 import ADLS2AssetValuesIOManager

    adls2 = FakeADLS2Resource(account_name="stwaldingerio")
    io = ADLS2AssetValuesIOManager(adls2=adls2, adls2_file_system="dagster-io", adls2_prefix="dagster")
    run = materialize([numbers, summary], instance=DagsterInstance.ephemeral(), resources={"io_manager": io})
    assert run.success
    assert run.output_for_node("values__summary") == [run.run_id]


def test_an_input_that_defers_missing_values_gets_them_to_decide_on(tmp_path):
    from resources.asset_values import DEFER_MISSING, MissingValue

    @asset(
        key=["values", "deciding"],
        ins={"daily": AssetIn(key=["values", "daily"], metadata={DEFER_MISSING: True})},
        partitions_def=days,
        backfill_policy=BackfillPolicy.single_run(),
    )
    def deciding(daily: dict) -> dict:
        return {
            key: isinstance(value, MissingValue) and "never been materialized" in value.message
            for key, value in daily.items()
        }

    instance = DagsterInstance.ephemeral()
    io = LocalAssetValuesIOManager(base_dir=str(tmp_path))
    job = Definitions(assets=[daily, deciding], resources={"io_manager": io}).resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, partition_key=RANGE[0], asset_selection=[daily.key]).success
    run = job.execute_in_process(instance=instance, tags=_range_tags(), asset_selection=[deciding.key])
    assert run.output_for_node("values__deciding") == {RANGE[0]: False, RANGE[1]: True, RANGE[2]: True}


@asset(key=["values", "frame"])
def frame(context):
    import pandas

    return pandas.DataFrame({"run": [context.run.run_id] * 2, "text": ["héllo", None], "n": [1, 2]})


@asset(key=["values", "frame_rows"], ins={"frame": AssetIn(key=["values", "frame"])})
def frame_rows(frame) -> list:
    return frame.to_dict("records")


def test_a_data_frame_is_stored_as_parquet_and_loaded_back_by_a_later_run(tmp_path):
    import pyarrow.parquet

    instance = DagsterInstance.ephemeral()
    io = LocalAssetValuesIOManager(base_dir=str(tmp_path))
    first = materialize([frame], instance=instance, resources={"io_manager": io})
    later = materialize([frame.to_source_asset(), frame_rows], instance=instance, resources={"io_manager": io})
    assert first.success and later.success
    stored = tmp_path / "values" / "frame" / UNPARTITIONED / f"{first.run_id}.parquet"
    table = pyarrow.parquet.read_table(stored)  # a real Parquet file, readable without Dagster
    assert table.column_names == ["run", "text", "n"] and table.num_rows == 2
    assert not (stored.parent / first.run_id).exists(), "no pickle beside the Parquet file"
    import pandas

    rows = later.output_for_node("values__frame_rows")
    assert [(row["run"], row["n"]) for row in rows] == [(first.run_id, 1), (first.run_id, 2)]
    assert rows[0]["text"] == "héllo" and pandas.isna(rows[1]["text"]), "unicode kept, the null stays missing"


def test_the_prod_io_manager_stores_a_data_frame_as_parquet_in_the_data_lake():
    import io as bytes_io

    import pyarrow.parquet
    from dagster import IOManagerDefinition
    from dagster_azure.adls2 import PickledObjectADLS2IOManager
    from dagster_azure.blob.fake_blob_client import FakeBlobServiceClient
    from dagster_azure.fakes.fake_adls2_resource import FakeADLS2ServiceClient, FakeLeaseClient

    from resources.asset_values_adls2 import adls2_run_scoped_values

    data_lake = FakeADLS2ServiceClient("stwaldingerio")
    files = PickledObjectADLS2IOManager(
        "dagster-io", data_lake, FakeBlobServiceClient("stwaldingerio"), FakeLeaseClient, "dagster"
    )
    io = IOManagerDefinition.hardcoded_io_manager(adls2_run_scoped_values(files, "dagster"))
    run = materialize([frame, frame_rows], instance=DagsterInstance.ephemeral(), resources={"io_manager": io})
    assert run.success
    assert [row["n"] for row in run.output_for_node("values__frame_rows")] == [1, 2]
    file_system = data_lake.get_file_system_client("dagster-io")
    name = f"dagster/values/frame/{UNPARTITIONED}/{run.run_id}.parquet"
    data = file_system.get_file_client(name).download_file().readall()
    assert pyarrow.parquet.read_table(bytes_io.BytesIO(data)).num_rows == 2
    stored = file_system.keys()
    assert f"dagster/values/frame/{UNPARTITIONED}/{run.run_id}.parquet" in stored

"""The training dataset's pure rules (waldinger_assets.training.dataset) and the evaluation's scoring
(waldinger_assets.training.evaluation), on plain data."""

import datetime as dt

from resources.demo_tickets import tickets
from waldinger_assets.training.dataset import (
    answer_distribution_markdown,
    dataset_rows,
    dataset_version,
    split_counts,
    split_of,
    split_records,
)
from waldinger_assets.training.evaluation import eval_requests, evaluate_results, percentile

LABELED_AT = dt.datetime(2026, 11, 20, 9, 30)


def labeled(count: int, seed: int = 5, start: int = 0) -> list[tuple]:
    return [
        (f"ex-{start + index:05d}", ticket.prompt, ticket.expected, LABELED_AT + dt.timedelta(minutes=index))
        for index, ticket in enumerate(tickets(seed, count))
    ]


def test_the_split_is_by_id_so_adding_rows_moves_no_old_row():
    before = {row["example_id"]: row["split"] for row in dataset_rows(labeled(500), 10).rows}
    grown = labeled(500) + labeled(300, seed=9, start=500)
    after = {row["example_id"]: row["split"] for row in dataset_rows(grown, 10).rows}
    assert {key: after[key] for key in before} == before
    counts = split_counts(dataset_rows(grown, 10).rows)
    assert counts["train"] + counts["eval"] == 800
    assert 40 <= counts["eval"] <= 120, counts  # about 10%
    assert split_of("ex-00001", 10) == split_of("ex-00001", 10)


def test_same_data_same_version_and_any_change_a_new_one():
    rows = labeled(200)
    version = dataset_version(dataset_rows(rows, 10).rows)
    assert dataset_version(dataset_rows(list(reversed(rows)), 10).rows) == version, "row order does not matter"
    changed = [*rows[:-1], (rows[-1][0], rows[-1][1], rows[0][2], rows[-1][3])]
    assert changed[-1][2] != rows[-1][2]
    assert dataset_version(dataset_rows(changed, 10).rows) != version
    assert dataset_version(dataset_rows(rows, 20).rows) != version, "another split is another dataset"


def test_invalid_answers_and_empty_prompts_are_left_out_and_counted_and_a_relabel_keeps_the_latest():
    rows = labeled(10)
    relabel = (rows[0][0], rows[0][1], rows[1][2], LABELED_AT + dt.timedelta(days=1))
    bad = [
        ("ex-bad-1", "Triage this support ticket: hi", "shipping, high", LABELED_AT),
        ("ex-bad-2", "   ", rows[0][2], LABELED_AT),
    ]
    result = dataset_rows([*rows, relabel, *bad], 10)
    assert result.dropped == {"invalid_expected_answer": 1, "no_prompt": 1, "relabeled": 1}
    assert len(result.rows) == 10
    first = next(row for row in result.rows if row["example_id"] == rows[0][0])
    assert first["expected"] == rows[1][2] and first["labeled_at"].startswith("2026-11-21")


def test_split_records_and_the_answer_distribution_table():
    result = dataset_rows(labeled(300), 10)
    train = split_records(result.rows, "train")
    assert train and set(train[0]) == {"example_id", "prompt", "expected"}
    assert len(train) == split_counts(result.rows)["train"]
    table = answer_distribution_markdown(result.rows)
    assert table.splitlines()[0].startswith("| split | category | low | medium | high")
    shipping_train = next(line for line in table.splitlines() if line.startswith("| train | shipping |"))
    expected = sum(1 for r in result.rows if r["split"] == "train" and '"category":"shipping"' in r["expected"])
    low, medium, high = (int(cell) for cell in shipping_train.split("|")[3:6])
    assert low + medium + high == expected > 0


def _result(custom_id: str, content: str | None, latency: float, status: int = 200) -> dict:
    body = {"choices": [{"message": {"role": "assistant", "content": content}}]} if status == 200 else {}
    return {"custom_id": custom_id, "response": {"status_code": status, "body": body}, "latency_ms": latency}


def test_the_evaluation_scores_exact_match_parse_rate_fields_and_latency():
    records = split_records(dataset_rows(labeled(4), 0).rows, "train")
    assert len(records) == 4
    right = records[0]["expected"]
    wrong_order = records[1]["expected"].replace('"order_id":', '"order_id": ')  # same fields, other spelling
    results = {
        records[0]["example_id"]: _result(records[0]["example_id"], "  " + right + "\n", 10.0),
        records[1]["example_id"]: _result(records[1]["example_id"], wrong_order, 20.0),
        records[2]["example_id"]: _result(records[2]["example_id"], "j\ufffdY1 noise", 30.0),
        # records[3]: no result at all (a lost line)
    }
    evaluation = evaluate_results(records, results)
    assert evaluation.rows == 4
    assert evaluation.metrics["exact_match"] == 0.25
    assert evaluation.metrics["parse_rate"] == 0.5
    assert evaluation.metrics["category_accuracy"] == 0.5
    assert evaluation.metrics["latency_p50_ms"] == 20.0 and evaluation.metrics["latency_p99_ms"] == 30.0
    assert [failure["example_id"] for failure in evaluation.failures] == [r["example_id"] for r in records[1:]]
    requests = eval_requests(records, "m")
    assert (
        requests[0]["body"]["temperature"] == 0
        and requests[0]["body"]["messages"][0]["content"] == records[0]["prompt"]
    )
    assert percentile([], 0.5) == 0.0

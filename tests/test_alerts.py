"""Alerts reach a Teams/Slack-style webhook; without one, or when it fails, they land in the outbox, and the
webhook's secret URL never reaches the log."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from resources.alerts import AlertsResource

SECRET = "T000/B000/XXXXsecretXXXX"


class Webhook:
    def __init__(self, status: int) -> None:
        self.status = status
        self.received: list[dict] = []


@pytest.fixture
def webhook() -> Iterator[tuple[Webhook, str]]:
    state = Webhook(200)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append({"path": self.path, "body": json.loads(body)})
            self.send_response(state.status)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/services/{SECRET}"
    server.shutdown()
    server.server_close()


def test_alert_posts_to_the_webhook(webhook, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state, url = webhook
    alerts = AlertsResource(webhook_url=url, outbox_path=str(tmp_path / "outbox.jsonl"))
    with caplog.at_level(logging.INFO):
        delivery = alerts.send("Schema drift", "- column_dropped: DB.S.T column C", link="http://ui/runs/1")
    assert delivery.delivered_to == "webhook"
    (request,) = state.received
    assert request["path"] == f"/services/{SECRET}"
    assert request["body"]["title"] == "Schema drift"
    assert "column_dropped: DB.S.T" in request["body"]["text"] and "http://ui/runs/1" in request["body"]["text"]
    assert not (tmp_path / "outbox.jsonl").exists()
    assert SECRET not in caplog.text


@pytest.mark.parametrize("failure", ["http_500", "unreachable"])
def test_failing_webhook_falls_back_to_the_outbox(
    webhook, tmp_path: Path, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    state, url = webhook
    if failure == "http_500":
        state.status = 500
    else:
        url = f"http://127.0.0.1:9/services/{SECRET}"  # discard port: nothing listens
    alerts = AlertsResource(webhook_url=url, outbox_path=str(tmp_path / "outbox.jsonl"))
    with caplog.at_level(logging.INFO):
        delivery = alerts.send("Schema drift", "details")
    assert delivery.delivered_to == "outbox"
    (record,) = [json.loads(line) for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert record["title"] == "Schema drift" and record["kind"] == "alert"
    assert SECRET not in caplog.text and SECRET not in (tmp_path / "outbox.jsonl").read_text()


def test_without_a_webhook_the_alert_goes_to_outbox_and_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    alerts = AlertsResource(outbox_path=str(tmp_path / "alerts" / "outbox.jsonl"))
    with caplog.at_level(logging.WARNING):
        alerts.send("Breaking drift", "- object_dropped: DB.S.T")
        alerts.send("Breaking drift again", "- object_dropped: DB.S.U")
    lines = (tmp_path / "alerts" / "outbox.jsonl").read_text().splitlines()
    assert [json.loads(line)["title"] for line in lines] == ["Breaking drift", "Breaking drift again"]
    assert "ALERT: Breaking drift" in caplog.text

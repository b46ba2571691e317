"""Alerts to the data platform team: a Teams/Slack-compatible incoming-webhook message, or, without a webhook
URL, a line in a local outbox file (JSON Lines) and the log.

Delivery never raises: a failing webhook is logged and the message goes to the outbox instead, so an alert
problem can neither fail nor hide a drift result. The webhook URL carries a token and is never logged.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dagster import ConfigurableResource, EnvVar, get_dagster_logger
from pydantic import Field

from resources import environment

WEBHOOK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class AlertDelivery:
    delivered_to: str  # "webhook" or "outbox"
    detail: str


def webhook_payload(title: str, text: str, link: str | None) -> dict:
    """One JSON body both Slack and Teams incoming webhooks accept: both render `text` (Markdown)."""
    body = f"**{title}**\n\n{text}"
    if link:
        body += f"\n\n[Open the run in Dagster]({link})"
    return {"title": title, "text": body}


class AlertsResource(ConfigurableResource):
    webhook_url: str | None = Field(default=None, description="Teams/Slack incoming webhook URL (a secret).")
    outbox_path: str = Field(description="JSON Lines file that receives alerts when no webhook delivers them.")

    def send(self, title: str, text: str, link: str | None = None, kind: str = "alert") -> AlertDelivery:
        log = get_dagster_logger()
        payload = webhook_payload(title, text, link)
        if self.webhook_url:
            host = urlsplit(self.webhook_url).hostname or "the webhook"
            try:
                request = urllib.request.Request(
                    self.webhook_url,
                    data=json.dumps(payload).encode(),
                    headers={"Content-Type": "application/json"},
                    method="POST",
                )
                with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
                    status = response.status
                log.info(f"Alert '{title}' posted to {host} (HTTP {status})")
                return AlertDelivery("webhook", f"HTTP {status} from {host}")
            except (urllib.error.URLError, OSError, ValueError) as error:
                reason = getattr(error, "code", None) or type(error).__name__
                log.warning(f"Alert webhook at {host} failed ({reason}); writing the alert to {self.outbox_path}")
        self._write_outbox(kind, title, payload, link)
        log.warning(f"ALERT: {title}\n{text}" + (f"\n{link}" if link else ""))
        return AlertDelivery("outbox", self.outbox_path)

    def _write_outbox(self, kind: str, title: str, payload: dict, link: str | None) -> None:
        path = Path(self.outbox_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "kind": kind,
            "title": title,
            "link": link,
            "payload": payload,
        }
        with open(path, "a", encoding="utf-8") as outbox:
            fcntl.flock(outbox, fcntl.LOCK_EX)  # several run processes may alert at once
            outbox.write(json.dumps(record, ensure_ascii=False) + "\n")


def alerts_resource() -> AlertsResource:
    variable = environment.alert_webhook_variable()
    return AlertsResource(
        webhook_url=EnvVar(variable) if variable else None,
        outbox_path=str(environment.data_dir() / "alerts" / "outbox.jsonl"),
    )

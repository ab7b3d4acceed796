"""`make_email_on_run_failure_sensor`: a run failure sensor that emails about each failed run,
with Dagster's arguments and default message.

The email goes out over SMTP from the sensor's evaluation (one message per failed run), so a
failure to send fails that tick, naming the sensor. Nothing is sent when the sensor is
defined.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Sequence
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

from dagloom.definitions.event_sensors import (
    RunFailureSensorContext,
    RunStatusSensorDefinition,
    run_failure_sensor,
)
from dagloom.definitions.sensor import DefaultSensorStatus
from dagloom.errors import DefinitionError

__all__ = ["make_email_on_run_failure_sensor"]

_SMTP_TYPES = ("SSL", "STARTTLS")


def _default_failure_email_body(context: RunFailureSensorContext) -> str:
    return "<br>".join(
        [
            f"Pipeline {context.dagster_run.job_name} failed!",
            f"Run ID: {context.dagster_run.run_id}",
            f"Error: {context.failure_event.message}",
        ]
    )


def _default_failure_email_subject(context: RunFailureSensorContext) -> str:
    return f"Dagster Run Failed: {context.dagster_run.job_name}"


def make_email_on_run_failure_sensor(
    email_from: str,
    email_password: str | None,
    email_to: Sequence[str],
    email_body_fn: Callable[[RunFailureSensorContext], str] = _default_failure_email_body,
    email_subject_fn: Callable[[RunFailureSensorContext], str] = _default_failure_email_subject,
    smtp_host: str = "smtp.gmail.com",
    smtp_type: str = "SSL",
    smtp_port: int | None = None,
    name: str | None = None,
    webserver_base_url: str | None = None,
    monitored_jobs: Sequence[Any] | None = None,
    job_selection: Sequence[Any] | None = None,
    monitor_all_code_locations: bool | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    monitor_all_repositories: bool | None = None,
    smtp_user: str | None = None,
) -> RunStatusSensorDefinition:
    """A run failure sensor (named `email_on_run_failure` unless `name` is given) that emails
    `email_to` from `email_from` about each failed run of the monitored jobs (every job of
    its code location by default).

    The message is HTML: `email_body_fn(context)` (job, run id and error by default), with a
    link to the run when `webserver_base_url` is given, under `email_subject_fn(context)`.
    It is sent through `smtp_host` over SSL (port 465 by default) or STARTTLS (port 587),
    logging in as `smtp_user` (default `email_from`) with `email_password`. Raises
    `DefinitionError` for an unknown `smtp_type` or an empty `email_to`.
    """
    if smtp_type not in _SMTP_TYPES:
        raise DefinitionError(
            f"make_email_on_run_failure_sensor: smtp_type must be one of {list(_SMTP_TYPES)}, "
            f"got {smtp_type!r}"
        )
    if isinstance(email_to, str) or not email_to:
        raise DefinitionError(
            "make_email_on_run_failure_sensor: email_to must be a non-empty list of addresses"
        )
    recipients = list(email_to)
    port = smtp_port if smtp_port is not None else (465 if smtp_type == "SSL" else 587)

    def send(context: RunFailureSensorContext) -> None:
        body = email_body_fn(context)
        if webserver_base_url:
            url = f"{webserver_base_url.rstrip('/')}/runs/{context.dagster_run.run_id}"
            body += f'<br><a href="{url}">View in Dagster UI</a>'
        message = MIMEMultipart()
        message["From"] = email_from
        message["To"] = ", ".join(recipients)
        message["Subject"] = email_subject_fn(context)
        message.attach(MIMEText(body, "html"))
        login_user = smtp_user or email_from
        tls = ssl.create_default_context()
        with (
            smtplib.SMTP_SSL(smtp_host, port, context=tls)
            if smtp_type == "SSL"
            else smtplib.SMTP(smtp_host, port)
        ) as server:
            if smtp_type != "SSL":
                server.starttls(context=tls)
            server.login(login_user, email_password or "")
            server.sendmail(email_from, recipients, message.as_string())

    decorate = run_failure_sensor(
        name=name or "email_on_run_failure",
        monitored_jobs=monitored_jobs,
        job_selection=job_selection,
        monitor_all_code_locations=monitor_all_code_locations,
        monitor_all_repositories=monitor_all_repositories,
        default_status=default_status,
    )
    definition: RunStatusSensorDefinition = decorate(send)
    return definition

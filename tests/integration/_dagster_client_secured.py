"""Run inside a virtualenv with `dagster-graphql`: Dagster's own GraphQL client against a
dagloom webserver with auth enabled, with and without the `Authorization` header; prints
what each call gave, one JSON object per line.

    python _dagster_client_secured.py PORT LAUNCHER_TOKEN VIEWER_TOKEN
"""

import json
import sys
import time

from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError


def report(name, **fields):
    print(json.dumps({"call": name, **fields}), flush=True)


def error_of(call):
    try:
        call()
    except DagsterGraphQLClientError as exc:
        args = [str(a) for a in exc.args]
        return {"type": type(exc).__name__, "args": args, "cause": str(exc.__cause__)}
    except Exception as exc:  # the client raises plain errors for GraphQL-level errors
        return {"type": type(exc).__name__, "args": [str(exc)]}
    return None


def client_with(token):
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return DagsterGraphQLClient("127.0.0.1", port_number=int(sys.argv[1]), headers=headers)


def main():
    launcher = client_with(sys.argv[2])
    run_id = launcher.submit_job_execution("process_numbers")
    deadline = time.monotonic() + 120
    status = launcher.get_run_status(run_id)
    while status.value not in ("SUCCESS", "FAILURE", "CANCELED") and time.monotonic() < deadline:
        time.sleep(0.1)
        status = launcher.get_run_status(run_id)
    report("launcher_submit", run_id=run_id, status=status.value)

    viewer = client_with(sys.argv[3])
    report("viewer_status", status=viewer.get_run_status(run_id).value)
    report("viewer_submit", error=error_of(lambda: viewer.submit_job_execution("process_numbers")))

    anonymous = client_with(None)
    report("anonymous_status", error=error_of(lambda: anonymous.get_run_status(run_id)))
    report(
        "anonymous_submit",
        error=error_of(lambda: anonymous.submit_job_execution("process_numbers")),
    )


if __name__ == "__main__":
    main()

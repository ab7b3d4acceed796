"""dagloom.azure against Azurite: the ADLS2 pickle IO manager in both of Dagster's forms,
failures naming the container and key (missing container, refused key, unreachable
endpoint, unpicklable value), and AzureBlobComputeLogManager built from Dagster's module
and class names."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import obstore
import pytest

import dagloom as dg
from dagloom.azure import (
    ADLS2Key,
    ADLS2PickleIOManager,
    ADLS2Resource,
    ADLS2SASToken,
    AzureBlobComputeLogManager,
    ObjectStoreError,
    adls2_pickle_io_manager,
    adls2_resource,
)
from dagloom.instance import DagloomInstance
from tests._object_store_scenarios import (
    assets_by_key,
    failed_upload_keeps_local_copy,
    locked,
    logs_read_back_elsewhere,
    pickled,
    running_output_is_uploaded,
    step_failure_message,
    write_compute_logs_home,
)
from tests.aws.test_s3_io_manager import evens, socket_nobody_listens_on
from tests.azure.conftest import ACCOUNT, KEY, AzureServer


def resources(endpoint: str, container: str, key: str = KEY) -> dict[str, Any]:
    return {
        "io_manager": adls2_pickle_io_manager.configured(
            {"adls2_file_system": container, "adls2_prefix": "io"}
        ),
        "adls2": adls2_resource.configured(
            {"storage_account": ACCOUNT, "credential": {"key": key}, "endpoint_url": endpoint}
        ),
    }


def _resource(endpoint: str, key: str = KEY) -> ADLS2Resource:
    return ADLS2Resource(
        storage_account=ACCOUNT,
        credential=ADLS2Key(key=key),
        endpoint_url=endpoint,
        max_attempts=1,
        timeout_seconds=5,
    )


def test_the_function_form_stores_each_output_as_a_blob(
    azure_server: AzureServer, container: str
) -> None:
    result = evens.execute_in_process(resources=resources(azure_server.endpoint, container))
    assert result.output_for_node("sum_numbers") == 30
    store = _resource(azure_server.endpoint).get_store(container)
    assert pickled(store, f"io/{result.run_id}/filter_even_numbers/result") == [2, 4, 6, 8, 10]


def test_the_class_form_stores_assets_by_key(azure_server: AzureServer, container: str) -> None:
    adls2 = _resource(azure_server.endpoint)
    manager = ADLS2PickleIOManager(adls2=adls2, adls2_file_system=container, adls2_prefix="a")
    assets_by_key(manager, adls2.get_store(container), "a")


def test_dagster_credential_forms_are_accepted() -> None:
    sas = ADLS2Resource.model_validate({"storage_account": "a", "credential": {"sas": "sig=x"}})
    assert sas.credential == ADLS2SASToken(token="sig=x")
    key = ADLS2Resource.model_validate({"storage_account": "a", "credential": {"key": "k"}})
    assert key.credential == ADLS2Key(key="k")
    assert ADLS2Resource(storage_account="acct").location("fs", "p").uri("p/x") == (
        "abfss://fs@acct.dfs.core.windows.net/p/x"
    )


def test_a_sas_token_in_dagster_form_signs_the_requests(
    azure_server: AzureServer, container: str
) -> None:
    configured = {
        "io_manager": adls2_pickle_io_manager.configured(
            {"adls2_file_system": container, "adls2_prefix": "io"}
        ),
        "adls2": adls2_resource.configured(
            {
                "storage_account": ACCOUNT,
                "credential": {"sas": azure_server.account_sas()},
                "endpoint_url": azure_server.endpoint,
            }
        ),
    }
    result = evens.execute_in_process(resources=configured)
    assert result.output_for_node("sum_numbers") == 30
    store = _resource(azure_server.endpoint).get_store(container)
    assert obstore.head(store, f"io/{result.run_id}/sum_numbers/result")["size"] > 0


def test_a_missing_container_fails_the_step_naming_it_and_the_key(
    azure_server: AzureServer,
) -> None:
    message = step_failure_message(
        evens.execute_in_process(
            resources=resources(azure_server.endpoint, "no-such-container"), raise_on_error=False
        )
    )
    assert f"{azure_server.endpoint}/no-such-container/io/" in message
    assert "generate_numbers/result" in message
    assert "bucket 'no-such-container' does not exist" in message


def test_a_refused_key_fails_the_step_naming_the_key(
    azure_server: AzureServer, container: str
) -> None:
    wrong = base64.b64encode(b"not the account key").decode()
    message = step_failure_message(
        evens.execute_in_process(
            resources=resources(azure_server.endpoint, container, wrong), raise_on_error=False
        )
    )
    assert f"writing {azure_server.endpoint}/{container}/io/" in message
    assert "the credentials were refused" in message


def test_an_unreachable_endpoint_fails_the_step_naming_the_key() -> None:
    with socket_nobody_listens_on() as endpoint:
        manager = ADLS2PickleIOManager(
            adls2=_resource(f"{endpoint}/{ACCOUNT}"), adls2_file_system="fs", adls2_prefix="io"
        )
        with pytest.raises(ObjectStoreError) as caught:
            evens.execute_in_process(resources={"io_manager": manager})
    assert caught.value.bucket == "fs"
    assert caught.value.key.endswith("/generate_numbers/result")


def test_a_value_that_cannot_be_pickled_names_its_output(
    azure_server: AzureServer, container: str
) -> None:
    with pytest.raises(ObjectStoreError, match="output 'result' of step 'make_lock' cannot be"):
        locked.execute_in_process(resources=resources(azure_server.endpoint, container))


# -- compute logs ------------------------------------------------------------------------------


def write_home(home: Path, endpoint: str, container: str, extra: str = "") -> Path:
    return write_compute_logs_home(
        home,
        "dagster_azure.blob.compute_log_manager",
        "AzureBlobComputeLogManager",
        {
            "storage_account": ACCOUNT,
            "container": container,
            "access_key_or_sas_token": f'"{KEY}"',
            "endpoint_url": endpoint,
        },
        extra,
    )


async def test_logs_are_uploaded_and_read_back_elsewhere(
    tmp_path: Path, azure_server: AzureServer, container: str
) -> None:
    home = write_home(tmp_path / "a", azure_server.endpoint, container)
    other = write_home(tmp_path / "b", azure_server.endpoint, container)
    store = _resource(azure_server.endpoint).get_store(container)
    run_id, manager = await logs_read_back_elsewhere(home, other, store, AzureBlobComputeLogManager)
    assert manager.log_location(run_id, "chatty", 0, 1) == (
        f"{azure_server.endpoint}/{container}/compute-log/{run_id}/chatty.0.err"
    )


async def test_a_running_steps_output_is_uploaded_every_interval(
    tmp_path: Path, azure_server: AzureServer, container: str
) -> None:
    home = write_home(
        tmp_path / "home", azure_server.endpoint, container, "    upload_interval: 3600\n"
    )
    store = _resource(azure_server.endpoint).get_store(container)
    await running_output_is_uploaded(home, store, AzureBlobComputeLogManager)


async def test_a_failed_upload_keeps_the_local_copy_and_the_step_succeeds(
    tmp_path: Path, azure_server: AzureServer
) -> None:
    home = write_home(tmp_path / "home", azure_server.endpoint, "no-such-container")
    failed = await failed_upload_keeps_local_copy(home)
    assert all(e["bucket"] == "no-such-container" for e in failed)


def test_a_wrong_section_names_the_key_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagloom.yaml").write_text(
        "compute_logs:\n  class: AzureBlobComputeLogManager\n  config: {container: c}\n"
    )
    with pytest.raises(dg.ConfigError) as caught:
        DagloomInstance.open(home).compute_log_manager  # noqa: B018  # building it is the test
    assert caught.value.key_paths == ["compute_logs.config.storage_account"]

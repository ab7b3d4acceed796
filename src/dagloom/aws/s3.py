"""S3 for dagloom, under Dagster's names: `S3Resource` / `s3_resource`, `S3PickleIOManager` /
`s3_pickle_io_manager`, and the compute log manager `S3ComputeLogManager`.

A Dagster definitions file switches by changing its import from `dagster_aws.s3` to
`dagloom.aws.s3`. One difference: the value of `s3_resource` is an `S3Resource` (which
hands out obstore stores), not a boto3 client. Every failure names the bucket and key
(`dagloom._object_store.ObjectStoreError`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from obstore.store import S3Store
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from dagloom._object_store import (
    ConfigurablePickleIOManager,
    ObjectStoreComputeLogManager,
    ObjectStoreError,
    PickleObjectStoreIOManager,
    StoreLocation,
    cached_pickle_manager,
    client_options,
    retry_config,
)
from dagloom.compute_logs.base import DEFAULT_MAX_BYTES
from dagloom.compute_logs.local import resolve_dir
from dagloom.definitions.io_manager import (
    IOManagerDefinition,
)
from dagloom.definitions.resources import (
    ConfigurableResource,
    InitResourceContext,
    ResourceDefinition,
)
from dagloom.errors import ConfigError

if TYPE_CHECKING:
    from dagloom.instance._loader import LoadContext

__all__ = [
    "ObjectStoreError",
    "S3ComputeLogManager",
    "S3PickleIOManager",
    "S3Resource",
    "s3_pickle_io_manager",
    "s3_resource",
]


def _s3_store(
    bucket: str,
    *,
    endpoint: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    session_token: str | None,
    region: str | None,
    allow_http: bool,
    allow_invalid_certificates: bool,
    max_attempts: int,
    timeout_seconds: float,
) -> S3Store:
    """A store for `bucket`; credentials and region not given come from the environment
    (`AWS_ACCESS_KEY_ID`, `AWS_REGION`, ...), as boto3 would find them."""
    given = {
        "endpoint": endpoint,
        "access_key_id": access_key_id,
        "secret_access_key": secret_access_key,
        "session_token": session_token,
        "region": region,
    }
    config: Any = {k: v for k, v in given.items() if v is not None}
    return S3Store(
        bucket,
        config=config,
        client_options=client_options(
            allow_http=allow_http,
            allow_invalid_certificates=allow_invalid_certificates,
            timeout_seconds=timeout_seconds,
        ),
        retry_config=retry_config(max_attempts, timeout_seconds),
    )


class S3Resource(ConfigurableResource):
    """Where S3 is and how to sign in: `endpoint_url` (an S3-compatible server), `use_ssl`
    (False allows plain HTTP), `aws_access_key_id`, `aws_secret_access_key`,
    `aws_session_token`, `region_name`; `verify` False accepts invalid certificates.
    Attempts per request (`max_attempts`) and the time for all of them (`timeout_seconds`)
    are bounded, so an unreachable endpoint fails a step in seconds."""

    endpoint_url: str | None = None
    use_ssl: bool = True
    verify: bool = True
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    region_name: str | None = None
    max_attempts: int = Field(default=3, ge=1)
    timeout_seconds: float = Field(default=30.0, gt=0)

    def get_store(self, bucket: str) -> S3Store:
        """An obstore store for `bucket` (for use with `obstore.put`, `obstore.get`...)."""
        return _s3_store(
            bucket,
            endpoint=self.endpoint_url,
            access_key_id=self.aws_access_key_id,
            secret_access_key=self.aws_secret_access_key,
            session_token=self.aws_session_token,
            region=self.region_name,
            allow_http=not self.use_ssl,
            allow_invalid_certificates=not self.verify,
            max_attempts=self.max_attempts,
            timeout_seconds=self.timeout_seconds,
        )

    def location(self, bucket: str, prefix: str = "") -> StoreLocation:
        """`bucket` and a key prefix in it, reached with this resource's settings."""
        return StoreLocation("s3", bucket, prefix, lambda: self.get_store(bucket))


s3_resource = ResourceDefinition(
    S3Resource.from_resource_context,
    None,
    "S3 (or an S3-compatible server): endpoint_url, use_ssl, aws_access_key_id, "
    "aws_secret_access_key, aws_session_token, region_name",
)
"""Dagster's function-style S3 resource: `s3_resource.configured({"endpoint_url": ...})`;
its value is an `S3Resource`."""


class S3PickleIOManager(ConfigurablePickleIOManager):
    """Pickles outputs to `s3://<s3_bucket>/<s3_prefix>/...` (see
    `dagloom._object_store.PickleObjectStoreIOManager` for the keys and errors)."""

    s3_resource: S3Resource
    s3_bucket: str
    s3_prefix: str = "dagster"

    def _manager(self) -> PickleObjectStoreIOManager:
        return cached_pickle_manager(self.s3_resource, self.s3_bucket, self.s3_prefix)


def _pickle_manager_from_context(context: InitResourceContext) -> PickleObjectStoreIOManager:
    config = dict(context.resource_config or {})
    bucket = config.pop("s3_bucket", None)
    prefix = config.pop("s3_prefix", "dagster")
    if not isinstance(bucket, str) or not bucket:
        raise ConfigError(
            "s3_pickle_io_manager needs its bucket",
            problems=[(("config", "s3_bucket"), "give the bucket name as a string")],
        )
    if config:
        raise ConfigError(
            "s3_pickle_io_manager config",
            problems=[
                (("config", key), "unknown key (known: s3_bucket, s3_prefix)") for key in config
            ],
        )
    s3 = getattr(context.resources, "s3", None)
    if not isinstance(s3, S3Resource):
        raise ConfigError(
            "s3_pickle_io_manager needs the resource 's3' to be dagloom.aws.s3.s3_resource "
            f"or an S3Resource, not {type(s3).__name__}"
        )
    return PickleObjectStoreIOManager(s3.location(bucket, str(prefix)))


s3_pickle_io_manager = IOManagerDefinition(
    _pickle_manager_from_context,
    None,
    "pickles outputs to S3: s3_bucket, s3_prefix; uses the resource 's3'",
    required_resource_keys={"s3"},
)
"""Dagster's function-style pickle IO manager: `s3_pickle_io_manager.configured({"s3_bucket":
..., "s3_prefix": ...})` beside an `s3` resource."""


# -- compute logs ------------------------------------------------------------------------------


class S3ComputeLogManagerConfig(BaseModel):
    """The `compute_logs.config` of `S3ComputeLogManager`, with the names of Dagster's
    `dagster_obstore.s3` manager (and `endpoint_url`, `use_ssl`, `verify` of the
    `dagster_aws.s3` one)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    bucket: str = Field(min_length=1)
    prefix: str = "dagster"
    endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("endpoint", "endpoint_url")
    )
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    region: str | None = None
    allow_http: bool = False
    allow_invalid_certificates: bool = False
    use_ssl: bool | None = None
    verify: bool | None = None
    local_dir: str | None = None
    max_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)
    upload_interval: float | None = Field(default=None, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    timeout_seconds: float = Field(default=30.0, gt=0)


class S3ComputeLogManager(ObjectStoreComputeLogManager):
    """Step logs written locally under `local_dir` (default `$DAGLOOM_HOME/compute_logs`)
    while the step runs and uploaded to `s3://<bucket>/<prefix>/<run_id>/<step_key>.
    <attempt>.out|.err` when it ends (and every `upload_interval` seconds while it runs,
    when set); a failed upload is logged and the local copy kept."""

    config_model: ClassVar[type[BaseModel]] = S3ComputeLogManagerConfig

    @classmethod
    def from_config(
        cls, config: S3ComputeLogManagerConfig, context: LoadContext
    ) -> S3ComputeLogManager:
        def build() -> S3Store:
            return _s3_store(
                config.bucket,
                endpoint=config.endpoint,
                access_key_id=config.access_key_id,
                secret_access_key=config.secret_access_key,
                session_token=config.session_token,
                region=config.region,
                allow_http=config.allow_http or config.use_ssl is False,
                allow_invalid_certificates=config.allow_invalid_certificates
                or config.verify is False,
                max_attempts=config.max_attempts,
                timeout_seconds=config.timeout_seconds,
            )

        return cls(
            StoreLocation("s3", config.bucket, config.prefix, build),
            resolve_dir(config.local_dir, context.home),
            max_bytes=config.max_bytes,
            upload_interval=config.upload_interval,
        )

"""Dagster resources: configuration shells that build the lower layers' objects.

Assets receive the built objects (`dg.ResourceParam[ArtifactStore]`), so the asset layer never
imports this module.
"""

from __future__ import annotations

import dagster as dg

from datagen.store import ArtifactStore, store_from_env, store_from_uri


@dg.resource(
    config_schema={
        "uri": dg.Field(
            dg.Noneable(str),
            default_value=None,
            description="Store URI (path, file:///..., s3://bucket/prefix); default from env.",
        )
    },
    description=(
        "The artifact store: a local directory by default, S3 when `uri` or WONDERFORGE_STORE "
        "says so. Credentials and endpoint come from the environment (AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL), never from run config."
    ),
)
def artifact_store(context: dg.InitResourceContext) -> ArtifactStore:
    uri = context.resource_config.get("uri")
    return store_from_uri(uri) if uri else store_from_env()

"""Releases and deploys: the artifact store and the deploy folder.

Each field is also read from ``BINDERY_<FIELD>`` (upper case); see bindery/settings/__init__.py.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class DeploySettings(BaseModel):
    artifact_dir: Path | None = Field(
        None,
        description="Artifact store folder: `bindery release` puts wheels and index.json here, deploys "
        "install from here. Empty: <data_dir>/artifacts.",
    )
    artifact_wait_timeout: float = Field(
        600.0, description="Seconds a deploy waits for its version's artifact to appear in the store "
        "before it fails naming the version and the store."
    )
    deploy_dir: Path | None = Field(
        None,
        description="Deploy folder: a git repository with one <instance>.toml per instance (version + "
        "settings), the record of verified versions and the per-instance state. Empty: <data_dir>/deploy.",
    )

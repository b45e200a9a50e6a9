"""What ``mllc verify`` found, as data: typed, frozen, JSON-serialisable (``format_version`` 1).

Built by :mod:`mllc.ops.verify` with the pure comparisons of :mod:`mllc.verify.compare`,
rendered by :mod:`mllc.verify.render`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# What one check of a version concerns; a finding names it first.
Check = Literal["tag", "lock", "cache", "input", "stage", "model", "registry"]
StageStatus = Literal["identical", "differs", "not rebuilt", "not recorded"]
Outcome = Literal["verified", "failed", "unverifiable"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Finding(_Frozen):
    """One thing that is not as recorded."""

    check: Check
    subject: str = Field(description="The file, stage, key or tag concerned")
    detail: str = Field(description="What was recorded and what was found")


class StageCheck(_Frozen):
    """One stage of the rebuilt pipeline against the version's committed ``dvc.lock``."""

    stage: str
    status: StageStatus
    outputs: int = Field(description="Outputs the rebuild compared")
    findings: tuple[Finding, ...] = ()


class Input(_Frozen):
    """A file the pipeline reads that DVC tracks (a ``.dvc`` pointer at the commit)."""

    path: str
    md5: str
    source: Literal["cache", "remote", "missing", "corrupt"] = Field(
        description="cache: restored from the local DVC cache (hash checked); remote: "
        "fetched through DVC first; missing: nowhere to be had; corrupt: the cache's copy "
        "does not hash to its name"
    )


class VersionCheck(_Frozen):
    """One registered version, rebuilt from its tag and compared with every record."""

    name: str
    version: str
    tag: str
    commit: str = Field(description="The commit the version's tag points at")
    outcome: Outcome
    registry_md5: str = Field(description="The model hash the registration tag records")
    lock_md5: str | None = Field(description="The model hash the commit's dvc.lock records")
    rebuilt_md5: str | None = Field(description="The model hash of the rebuild (None: none)")
    inputs: tuple[Input, ...] = ()
    stages: tuple[StageCheck, ...] = ()
    cache_checked: int = Field(0, description="DVC cache objects hashed against their names")
    cache_absent: tuple[str, ...] = Field(
        (), description="Cached outputs the local DVC cache does not hold (not an error)"
    )
    findings: tuple[Finding, ...] = Field(
        (), description="Everything not as recorded; empty when the version is verified"
    )
    notes: tuple[str, ...] = Field(
        (), description="Facts worth knowing that are not failures (e.g. library versions)"
    )
    seconds: float = 0.0

    @property
    def model_identical(self) -> bool:
        return self.rebuilt_md5 is not None and (
            self.rebuilt_md5 == self.registry_md5 == self.lock_md5
        )


class VerifyReport(_Frozen):
    format_version: Literal[1] = 1
    mllc_version: str
    versions: tuple[VersionCheck, ...]

    @property
    def verified(self) -> bool:
        return bool(self.versions) and all(v.outcome == "verified" for v in self.versions)

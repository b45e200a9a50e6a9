"""The model registry: versions and environment assignments as Git tags in GTO's format.

A version is an annotated tag ``<name>@vX.Y.Z`` on the commit whose dvc.lock pins the
model; its message is GTO's first line, a blank line and a JSON document with the
model's DVC hash, metrics and lineage. An environment assignment is an annotated tag
``<name>#<env>#<N>`` on the version's commit. ``gto show`` reads the same registry.
Plain functions: they read or write tags and return values; they never print and
never delete a tag (registry history is kept).
"""

from mllc.registry.store import (
    RegistryError,
    assign,
    assignments,
    assignments_elsewhere,
    find_by_md5,
    in_cache,
    list_versions,
    register,
    registration,
    versions_and_tags,
)
from mllc.registry.tags import Registration
from mllc.semver import next_version
from mllc.types import Assignment

__all__ = [
    "Assignment",
    "Registration",
    "RegistryError",
    "assign",
    "assignments",
    "assignments_elsewhere",
    "find_by_md5",
    "in_cache",
    "list_versions",
    "next_version",
    "register",
    "registration",
    "versions_and_tags",
]

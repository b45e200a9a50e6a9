"""Semantic versions as GTO spells them (``v1.2.0``): parsing, ordering, the next version.

GTO accepts a ``v`` followed by a full SemVer 2.0.0 version (pre-release and build
metadata included) in a registration tag, so this module reads the same grammar; it
does not depend on GTO or the ``semver`` package at run time (GTO is a dev tool here).
Ordering is SemVer precedence: numeric core, then a release above its pre-releases,
pre-release identifiers compared numerically or lexically, build metadata ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# GTO's `semver` pattern (gto/constants.py), with named groups; a version in a tag is
# it prefixed by the mandatory "v" (here and in the tag grammar, mllc.registry.tags).
SEMVER = (
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<prerelease>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
_SEMVER = re.compile("v" + SEMVER)

FIRST_VERSION = "v1.0.0"

# A pre-release identifier's sort key: numeric identifiers sort before alphanumeric ones.
_IdKey = tuple[int, int, str]
SortKey = tuple[int, int, int, int, tuple[_IdKey, ...], str]


@dataclass(frozen=True)
class Version:
    """A parsed ``vMAJOR.MINOR.PATCH[-PRE][+BUILD]``."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = ""

    def __str__(self) -> str:
        text = f"v{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + self.build
        return text

    @property
    def key(self) -> SortKey:
        """SemVer precedence; the full text breaks ties between builds so sorting is total."""
        pre = tuple(
            (0, int(part), "") if part.isdigit() else (1, 0, part) for part in self.prerelease
        )
        # A release (no pre-release) ranks above every pre-release of the same core.
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre, str(self))

    def bump_minor(self) -> Version:
        return Version(self.major, self.minor + 1, 0)


def parse(text: str) -> Version:
    """Parse ``v1.2.0``; raise ValueError on anything GTO would not accept as a version."""
    match = _SEMVER.fullmatch(text)
    if match is None:
        raise ValueError(f"not a semantic version (expected vX.Y.Z): {text!r}")
    pre = match["prerelease"]
    return Version(
        int(match["major"]),
        int(match["minor"]),
        int(match["patch"]),
        tuple(pre.split(".")) if pre else (),
        match["build"] or "",
    )


def is_valid(text: str) -> bool:
    return _SEMVER.fullmatch(text) is not None


def sort_key(text: str) -> SortKey:
    """Key for ``sorted``; the text must be a valid version."""
    return parse(text).key


def next_version(existing: Iterable[str]) -> str:
    """The version to register next: ``v1.0.0`` first, then a minor bump of the greatest.

    Bumping the greatest existing version (not the latest registered, nor a count)
    keeps versions monotonic even when someone tagged a higher one by hand
    (``v3.0.0`` → ``v3.1.0``) and never reuses a name. Invalid strings are ignored:
    they are not versions, so they cannot collide with one.
    """
    versions = [parse(v) for v in existing if is_valid(v)]
    if not versions:
        return FIRST_VERSION
    return str(max(versions, key=lambda v: v.key).bump_minor())

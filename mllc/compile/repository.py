"""The compile loop, once: every spec of a repository to its :class:`Desired` files, plus
the files generated from all specs together (the CI workflow).

``mllc compile`` writes these files; ``mllc plan`` diffs them against the checkout.
Pure: nothing is read or written here.
"""

from __future__ import annotations

from collections.abc import Sequence

from mllc.compile import Bundle, compile_spec, lifecycle_document
from mllc.compile.desired import Desired
from mllc.compile.workflow import WORKFLOW_PATH, render_workflow
from mllc.spec.models import Lifecycle


def compile_lifecycle(spec: Lifecycle, source: str) -> Desired:
    """What one spec asks for; ``source`` is its repository-relative path."""
    return Desired(
        name=spec.metadata.name,
        spec_file=source,
        files=dict(compile_spec(spec, source).items()),
        lifecycle=lifecycle_document(spec),
        spec=spec,
    )


def repository_files(desired: Sequence[Desired]) -> dict[str, str]:
    """Files generated from all specs together: the CI workflow (none without specs: a
    repository whose every spec was removed keeps its workflow as it is)."""
    if not desired:
        return {}
    text = render_workflow([d.spec for d in desired], [d.spec_file for d in desired])
    return {WORKFLOW_PATH: text}


def compile_repository(specs: Sequence[tuple[str, Lifecycle]]) -> Bundle:
    """Every generated file of ``specs`` ((repository-relative path, spec) pairs)."""
    desired = [compile_lifecycle(spec, source) for source, spec in specs]
    files = [pair for want in desired for pair in want.files.items()]
    return Bundle(tuple(sorted([*files, *repository_files(desired).items()])))

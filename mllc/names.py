"""The one rule for lifecycle and environment names: lowercase DNS labels.

Names become DVC stage names, Kubernetes objects, Git tag parts and file names, so
every place that checks one uses :func:`is_dns_label`. It matches the whole string:
a pattern ending in ``$`` used with ``re.match`` also accepts a trailing newline
(``"iris\\n"``), which would then reach paths and tags.
"""

from __future__ import annotations

import re

DNS_LABEL_MAX = 63
DNS_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
"""For JSON Schema (anchored); Python code uses :func:`is_dns_label`."""
_DNS_LABEL = re.compile(DNS_LABEL_PATTERN, re.ASCII)


def is_dns_label(value: str) -> bool:
    return len(value) <= DNS_LABEL_MAX and _DNS_LABEL.fullmatch(value) is not None

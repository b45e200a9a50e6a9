"""Model cards and lineage: what is recorded about a registered version, in one place.

:mod:`mllc.card.gather` reads the evidence (registry tags, the version commit's files,
the outputs the DVC cache keeps, monitoring reports, the verification record) into a
:class:`~mllc.card.model.Card`; :mod:`mllc.card.lineage` builds the path from the data
through the stages to the model and its deployments; :mod:`mllc.card.render` writes
Markdown and HTML. Read-only, except that apply writes the card of a new version
(``pipelines/<name>/card.md``) into the commit it tags. Nothing here loads a model or
runs code from a spec.
"""

from mllc.card.files import CardError
from mllc.card.gather import card_of, graph_of, pending_card
from mllc.card.lineage import Graph
from mllc.card.model import Card
from mllc.card.records import verify_record
from mllc.card.render import html, markdown

__all__ = [
    "Card",
    "CardError",
    "Graph",
    "card_of",
    "graph_of",
    "html",
    "markdown",
    "pending_card",
    "verify_record",
]

"""Reusable catalog reads."""

from collections.abc import Iterable, Sequence

from catalog.models import PartFamily, PartRevision, SearchSynonym
from catalog.parameters import ParameterSpec, SchemaError, parse_schema
from catalog.search import parse_query, search, search_doc, synonym_groups


def families_search(
    families: Iterable[PartFamily], query: str, *, revisions: str = "published"
) -> list[PartFamily]:
    """The families that match a search query (catalog.search), best first. Each family's
    current revision is read from its prefetched attribute `revisions` (a list, newest
    first), so the search costs one query (the synonyms) on top of the caller's."""
    synonyms = synonym_groups(SearchSynonym.objects.values_list("words", flat=True))
    concepts = parse_query(query, synonyms)
    if not concepts:
        return list(families)
    docs = []
    for family in families:
        published: Sequence[PartRevision] = getattr(family, revisions, ())
        specs: tuple[ParameterSpec, ...] = ()
        if published:
            try:
                specs = parse_schema(published[0].parameter_schema)
            except SchemaError:
                specs = ()
        docs.append(
            search_doc(
                key=family,
                name=family.name,
                slug=family.slug,
                category=family.category,
                tags=family.tags,
                description=family.description,
                parameters=[(s.label, s.help, s.type, s.choices, s.min, s.max) for s in specs],
            )
        )
    found = [doc.key for doc in search(docs, concepts)]
    return [f for f in found if isinstance(f, PartFamily)]

"""Write paths for the catalog: creating and publishing immutable part revisions."""

from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from catalog.models import Material, PartFamily, PartRevision
from catalog.parameters import SchemaError, parse_rules, parse_schema
from microfactory.errors import DomainError


@transaction.atomic
def revision_create(
    *,
    family: PartFamily,
    script: str,
    parameter_schema: list[dict[str, Any]],
    rules: list[dict[str, Any]],
    process: str,
    materials: list[Material],
    created_by: Any = None,
) -> PartRevision:
    """A new draft revision numbered after the family's last one."""
    try:
        parse_schema(parameter_schema)
        parse_rules(rules)
    except SchemaError as error:
        raise DomainError(f"the parameter schema is invalid: {error}") from error
    last = family.revisions.aggregate(last=Max("number"))["last"] or 0
    revision = PartRevision(
        family=family,
        number=last + 1,
        script=script,
        parameter_schema=parameter_schema,
        rules=rules,
        process=process,
        created_by=created_by,
    )
    revision.checksum = revision.compute_checksum()
    revision.save()
    revision.materials.set(materials)
    return revision


@transaction.atomic
def revision_publish(*, revision: PartRevision, published_by: Any = None) -> PartRevision:
    """Make a draft orderable. Publishing twice is refused: a published revision is frozen."""
    revision = PartRevision.objects.select_for_update().get(pk=revision.pk)
    if revision.is_published:
        raise DomainError(f"{revision} is already published")
    if revision.checksum != revision.compute_checksum():
        raise DomainError(f"{revision} changed after it was created; create a new revision")
    revision.published_at = timezone.now()
    revision.published_by = published_by
    revision.save(update_fields=["published_at", "published_by"])
    return revision

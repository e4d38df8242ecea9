"""Template words for parts: a configuration shown by its parameters' labels and units
("Bore diameter 25 mm, Flange yes"), never by the names the script uses (bore_d=25)."""

from typing import Any

from django import template

from catalog.models import PartRevision
from catalog.parameters import SchemaError, describe, parse_schema
from production import public

register = template.Library()


@register.simple_tag
def parameter_words(revision: PartRevision | None, parameters: Any, part: str = "") -> str:
    """`parameters` of `revision`, or of revision number `revision` of part slug `part`
    (the cart keeps slugs and numbers), as "Label value unit, ..."."""
    if not isinstance(parameters, dict):
        return ""
    if not isinstance(revision, PartRevision):
        number = revision if isinstance(revision, int) else None
        revision = (
            PartRevision.objects.filter(family__slug=part, number=number).first()
            if part and number is not None
            else None
        )
    try:
        specs = parse_schema(revision.parameter_schema) if revision is not None else ()
    except SchemaError:
        specs = ()
    return ", ".join(f"{label} {value}" for label, value in describe(specs, parameters))


@register.filter
def minutes(seconds: Any) -> str:
    """A machine time in seconds as people say it: "45 s", "12 min", "2 h 5 min"."""
    try:
        total = float(seconds)
    except (TypeError, ValueError):
        return ""
    if total < 60:
        return f"{total:.0f} s"
    whole = round(total / 60)
    hours, rest = divmod(whole, 60)
    if not hours:
        return f"{whole} min"
    return f"{hours} h {rest} min" if rest else f"{hours} h"


@register.filter
def lookup(mapping: Any, key: Any) -> Any:
    """mapping[key], or None: the catalog cards' "from" prices by revision id."""
    return mapping.get(key) if isinstance(mapping, dict) else None


_JOB_STATUSES = dict(public.JOB_STATUS_CHOICES)


@register.filter
def job_status(value: str) -> str:
    """A job status as people read it: "geometry_built" -> "geometry built"."""
    return _JOB_STATUSES.get(value, str(value).replace("_", " "))

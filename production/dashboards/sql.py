"""Time arithmetic the database does natively, on SQLite and PostgreSQL alike.

Django's own duration and date functions on SQLite are Python functions called per row
(django_timestamp_diff, django_datetime_cast_date): at a year of events that is seconds. These
are the same sums in each database's own SQL.
"""

from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Aggregate, DateField, Expression, F, FloatField, Func, Value
from django.db.models.functions import TruncDate
from django.db.models.sql.compiler import SQLCompiler

from production.dashboards.period import Period

_Sql = tuple[str, Any]


class Seconds(Func):
    """A timestamp as seconds since the epoch (a float)."""

    output_field = FloatField()
    template = "EXTRACT(EPOCH FROM %(expressions)s)::double precision"

    def as_sqlite(self, compiler: SQLCompiler, connection: Any, **extra: Any) -> _Sql:
        # julianday() reads the stored text at C speed: days since 4714 BC, the Unix epoch
        # being day 2440587.5.
        template = "((julianday(%(expressions)s) - 2440587.5) * 86400.0)"
        return self.as_sql(compiler, connection, template=template, **extra)


def seconds(name: str) -> Seconds:
    return Seconds(F(name))


def epoch(at: datetime) -> float:
    return at.timestamp()


class _ShiftedDate(Func):
    """SQLite: the date of a UTC timestamp shifted by a fixed number of seconds."""

    output_field = DateField()
    function = "date"

    def __init__(self, expression: Any, offset_s: int) -> None:
        super().__init__(expression, Value(f"{offset_s:+d} seconds"))


def local_date(name: str, period: Period) -> Expression:
    """The day (in the period's zone) of a timestamp column. PostgreSQL converts each row by
    the zone's rules; SQLite shifts by the zone's offset at the period's start (exact for UTC
    and zones without a daylight-saving change inside the period)."""
    if connection.vendor == "sqlite":
        offset = period.start.utcoffset()
        return _ShiftedDate(F(name), int(offset.total_seconds()) if offset else 0)
    return TruncDate(name, tzinfo=period.zone)


class PercentileDisc(Aggregate):
    """PostgreSQL's percentile_disc: the value at nearest rank ceil(share x n) of the ordered
    values, the rank the dashboard's percentiles use (SQLite has no such aggregate)."""

    function = "PERCENTILE_DISC"
    output_field = FloatField()
    template = "%(function)s(%(share)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, share: float) -> None:
        if not 0 < share <= 1:
            raise ValueError("a percentile's share is in (0, 1]")
        super().__init__(expression, share=repr(float(share)))

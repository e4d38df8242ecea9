"""A saved quote as a PDF for purchasing: quote number, validity date, team, requester, each
line with its configuration and prices, the total. WeasyPrint, as the travelers.

The page reads nothing from outside: its CSS is in the HTML and the fetcher refuses every URL,
so nothing a requester typed (a reference, a note) can make the renderer fetch or read files.
"""

from collections.abc import Mapping

from django.template.loader import render_to_string
from django.utils import timezone
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from catalog.parameters import SchemaError, parse_schema
from orders.models import SavedQuote, SavedQuoteLine


class _NothingFetcher(URLFetcher):  # type: ignore[misc]  # WeasyPrint is untyped
    """Refuses every URL: the quote's HTML is self-contained. WeasyPrint logs and skips it."""

    def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> URLFetcherResponse:
        raise ValueError(f"quote PDFs read no URLs, not {url[:100]}")


def _parameters(line: SavedQuoteLine) -> list[tuple[str, str]]:
    """(label, value with its unit) of each parameter, in the schema's order."""
    values: dict[str, object] = line.parameters
    try:
        specs = parse_schema(line.revision.parameter_schema)
    except SchemaError:
        return [(name, str(value)) for name, value in values.items()]
    shown = []
    for spec in specs:
        if spec.name in values:
            unit = spec.unit or ("mm" if spec.type == "length" else "")
            shown.append((spec.label or spec.name, f"{values[spec.name]} {unit}".strip()))
    return shown


def quote_html(quote: SavedQuote) -> str:
    lines = list(quote.lines.select_related("revision__family", "material"))
    return render_to_string(
        "orders/quote_pdf.html",
        {
            "quote": quote,
            "lines": [(line, _parameters(line)) for line in lines],
            "printed": timezone.localtime().strftime("%Y-%m-%d %H:%M"),
        },
    )


def quote_pdf(quote: SavedQuote) -> bytes:
    """The quote's PDF (A4)."""
    pdf: bytes = HTML(string=quote_html(quote), url_fetcher=_NothingFetcher()).write_pdf()
    return pdf

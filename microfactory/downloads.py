"""Serving files whose bytes users or catalog scripts influenced: job artifacts (STEP, STL,
drawing, G-code, traveler) and preview files (GLB, STL, drawing).

Each goes out with its own Content-Security-Policy (django-csp's middleware leaves a header
that is already set alone): `sandbox` makes a document opened from it an opaque origin with
scripts, forms and popups off, so even an SVG or HTML-sniffed file that slipped past every
other check cannot act with the viewer's session; `default-src 'none'` lets it load nothing.
`nosniff` holds the browser to the declared type. A drawing is also an attachment, unless it
is shown through <img> (a page's catalog cards): an image never runs scripts, and opened
directly it is still sandboxed.
"""

from typing import IO, TypeVar

from django.http import FileResponse, HttpResponseBase

FILE_POLICY = "sandbox; default-src 'none'"
Response = TypeVar("Response", bound=HttpResponseBase)


def file_response(
    file: IO[bytes], *, content_type: str, filename: str = "", attachment: bool = True
) -> FileResponse:
    """A stored file as a sandboxed download (or inline, for files shown via <img>)."""
    response = FileResponse(
        file, content_type=content_type, as_attachment=attachment, filename=filename
    )
    return file_sandboxed(response)


def file_sandboxed(response: Response) -> Response:
    """The response with the headers every user-influenced file carries."""
    response["Content-Security-Policy"] = FILE_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    return response

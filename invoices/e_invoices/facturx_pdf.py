"""A Factur-X invoice: the document's PDF, rendered as PDF/A-3b, with its
validated CII XML (e_invoice_xml) embedded as factur-x.xml by the factur-x
package, which also writes the XMP metadata a receiver reads (PDF/A part 3,
conformance B; Factur-X's EN 16931 conformance level). The result is the one PDF
stored and sent for the document (invoices.rendering): a person reads the page,
a machine the XML, and both say the same amounts.

The factur-x package dates what it writes (the PDF's and the XMP's dates, the
embedded file's) with the current time; here they are the document's own
(PdfMetadata.modified), so that a document renders to the same bytes every
time, as every PDF here does (invoices.pdf_renderer).
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from customers.e_invoice_details import FACTURX

# WeasyPrint's name for the PDF/A variant Factur-X requires.
PDF_VARIANT = "pdf/a-3b"
# The factur-x package's own name for what it embeds.
XML_FILENAME = "factur-x.xml"

# The package's clock is swapped while it writes (_dated): one document at a time.
_clock_lock = threading.Lock()


@dataclass(frozen=True)
class PdfMetadata:
    """What the PDF says about itself: its title and language (the document's),
    its author (the seller) and when it was last changed."""

    title: str
    lang: str
    author: str
    modified: datetime


def is_facturx(document) -> bool:
    """Whether the document's stored PDF is a Factur-X: an issued invoice or
    credit note e-invoiced as Factur-X (a draft has no e-invoice yet)."""
    return (
        getattr(document, "e_invoice_format", "") == FACTURX
        and bool(getattr(document, "e_invoice_xml", ""))
        and bool(document.number)
    )


def without_producer(document, pdf) -> None:
    """WeasyPrint's finisher for a PDF to embed an e-invoice in: no Producer in its
    document information, as the factur-x package writes its own in the XMP
    metadata that replaces WeasyPrint's, and PDF/A wants the two to agree."""
    pdf.info.pop("Producer", None)


def facturx_pdf_embed(*, pdf: bytes, xml: str, metadata: PdfMetadata) -> bytes:
    """The PDF/A-3b `pdf` with `xml` (a validated Factur-X EN 16931 CII document)
    embedded as factur-x.xml, the XML checked against the schema once more by the
    package as it embeds it (ValueError if it fails), dated metadata.modified."""
    from facturx import generate_from_binary

    with _dated(metadata.modified):
        return generate_from_binary(
            pdf,
            xml.encode("utf-8"),
            flavor="factur-x",
            level="en16931",
            check_xsd=True,
            pdf_metadata={
                "author": metadata.author,
                "keywords": "Factur-X, EN 16931",
                "title": metadata.title,
                "subject": metadata.title,
            },
            lang=metadata.lang,
        )


@contextmanager
def _dated(moment: datetime) -> Iterator[None]:
    """The factur-x package's clock stopped at `moment` (it reads
    facturx.facturx.datetime.now() for every date it writes)."""
    from facturx import facturx

    stopped = moment.astimezone(UTC).replace(microsecond=0)

    class _Stopped(datetime):
        @classmethod
        def now(cls, tz=None):
            return stopped if tz is None else stopped.astimezone(tz)

    with _clock_lock:
        running = facturx.datetime
        facturx.datetime = _Stopped
        try:
            yield
        finally:
            facturx.datetime = running

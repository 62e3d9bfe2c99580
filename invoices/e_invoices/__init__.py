"""E-invoices: an invoice or credit note as an EN 16931 document (document.py),
written as CII for Factur-X / ZUGFeRD (cii.py) or as UBL 2.1 for XRechnung and
Peppol BIS Billing 3.0 (ubl.py), checked against the official schemas and
Schematron rules before it is issued (validation.py)."""

"""The period close and the lines of a period's invoices."""

"""Rating: the one pricing walk (pricing) and the invoice lines it yields (lines)."""

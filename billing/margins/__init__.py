"""Costs and margins (issue 51): what usage cost the seller at its cost rates
(costs), and what was billed for it (report)."""

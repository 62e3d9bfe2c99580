"""How the admin (written in English) shows a moment by default: day first, a
24-hour clock, and the zone named ("2 Dec 2026, 08:00 UTC"), instead of Django's
"Dec. 2, 2026, 8 a.m.", which names no zone. Documents a customer reads set their
own formats (common.customer_text); only what Django formats by default changes."""

DATETIME_FORMAT = "j M Y, H:i T"
SHORT_DATETIME_FORMAT = "j M Y, H:i T"
DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "j M Y"

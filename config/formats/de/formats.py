"""How the admin in German shows a moment by default: as the English admin does
(config/formats/en), with the zone named ("11. Nov. 2026, 09:30 UTC"), where
Django's own German formats ("11. November 2026 09:30") name none. The dates
alone keep Django's German formats."""

DATETIME_FORMAT = "j. N Y, H:i T"
SHORT_DATETIME_FORMAT = "d.m.Y H:i T"

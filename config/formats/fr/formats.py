"""How the admin in French shows a moment by default: as the English admin does
(config/formats/en), with the zone named ("11 nov. 2026, 09:30 UTC"), where
Django's own French formats ("11 novembre 2026 09:30") name none. The dates
alone keep Django's French formats."""

DATETIME_FORMAT = "j N Y, H:i T"
SHORT_DATETIME_FORMAT = "d/m/Y H:i T"

"""Wallets in the admin, a module per model: wallets (with their blocks and
ledger, uncovered usage and the ledger entries) and commits. Importing the
package registers them all."""

from wallets.admin import commits, wallets

__all__ = ["commits", "wallets"]

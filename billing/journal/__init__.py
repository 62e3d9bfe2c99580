"""The accounting journal: balanced double-entry lines written with every
document (invoices, payments, credit notes, refunds, purchases, credits
consumed and expired, commits drawn), mapped to the seller's chart of accounts.

This package takes plain legs built by the document services (invoices and
wallets) and knows none of them: it sits below both in the layers contract.
"""

"""Which of finance's accounts an entry goes to: the mapping's most specific row
for its kind (a meter's, then a plan's, then a tax rate's), else the kind's
own row, else the default chart below."""

from dataclasses import dataclass

from billing.journal.models import AccountKind, JournalAccount

# What an unmapped kind is written to: a plain chart finance can rename. Data
# stored on the entries, not interface text: the same words in every language.
DEFAULT_ACCOUNTS = {
    AccountKind.RECEIVABLE: ("1100", "Accounts receivable"),
    AccountKind.PAYMENTS_CLEARING: ("1200", "Payments clearing"),
    AccountKind.TAX_PAYABLE: ("2200", "Tax payable"),
    AccountKind.DEFERRED_REVENUE: ("2300", "Deferred revenue"),
    AccountKind.CREDIT_BALANCE: ("2400", "Customer credit balance"),
    AccountKind.REVENUE: ("4000", "Revenue"),
    AccountKind.BREAKAGE: ("4100", "Breakage revenue"),
    AccountKind.DISCOUNTS: ("4900", "Discounts"),
    AccountKind.EXCHANGE_DIFFERENCES: ("7900", "Exchange differences"),
}


@dataclass(frozen=True)
class Account:
    code: str
    name: str


class AccountBook:
    """The mapping of some kinds, read once (one query) for a document or a
    batch of them."""

    def __init__(self, kinds: set[str]):
        self.rows = {
            (row.kind, row.meter, row.plan, row.tax_rate): Account(row.code, row.name)
            for row in JournalAccount.objects.filter(kind__in=sorted(kinds))
        }

    def resolve(self, kind: str, *, meter: str = "", plan: str = "", tax_rate: str = "") -> Account:
        for key in (
            (kind, meter, "", "") if meter else None,
            (kind, "", plan, "") if plan else None,
            (kind, "", "", tax_rate) if tax_rate else None,
            (kind, "", "", ""),
        ):
            if key is not None and key in self.rows:
                return self.rows[key]
        code, name = DEFAULT_ACCOUNTS[AccountKind(kind)]
        return Account(code, name)

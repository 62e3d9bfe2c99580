"""Email addresses a customer gives for its invoices, internationalized ones too.

Django's EmailValidator takes an internationalized domain (bücher.example) but
refuses a local part that is not ASCII, so `経理@sakura.jp` (RFC 6531: SMTPUTF8)
read as "not an email address". Here an address is:

- ASCII: what Django's EmailValidator accepts, as before;
- otherwise a dot-atom local part (RFC 5322's atext plus any non-ASCII letter,
  mark, number, punctuation or symbol; no spaces, controls or format characters,
  no empty atom) of at most 64 bytes in UTF-8, "@", and a domain Django accepts
  once IDNA-encoded (its own punycode step): `経理@sakura.jp`, `josé@bücher.example`.

Quoted local parts, and addresses with a display name, are refused (as Django
does). Sending to such an address needs a mail server that speaks SMTPUTF8
(config.email_backend)."""

import re
import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

# RFC 5322 atext (ASCII) characters.
ATEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-"
)
# Unicode categories a non-ASCII character of a local part may not be in:
# controls, format characters, surrogates, private use, unassigned, separators.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
MAX_LOCAL_BYTES = 64
MAX_ADDRESS_LENGTH = 254
# Django checks the domain; any ASCII local part stands in for the real one.
STAND_IN = "a"
_WHITESPACE = re.compile(r"\s")


def _atom_character(character: str) -> bool:
    if character.isascii():
        return character in ATEXT
    return unicodedata.category(character) not in REFUSED_CATEGORIES


def is_international_local_part(local: str) -> bool:
    """A dot-atom local part with some non-ASCII characters (RFC 6531)."""
    if not local or len(local.encode("utf-8")) > MAX_LOCAL_BYTES:
        return False
    atoms = local.split(".")
    return all(atom and all(_atom_character(c) for c in atom) for atom in atoms)


def validate_email_address(value: object) -> None:
    """Raise ValidationError unless `value` is an email address, its local part
    ASCII (Django's rule) or internationalized (RFC 6531)."""
    if not isinstance(value, str) or value.isascii():
        validate_email(value)
        return
    local, at, domain = value.rpartition("@")
    if not at or len(value) > MAX_ADDRESS_LENGTH or _WHITESPACE.search(value):
        raise ValidationError("Enter a valid email address.", code="invalid")
    if not is_international_local_part(local):
        raise ValidationError("Enter a valid email address.", code="invalid")
    validate_email(f"{STAND_IN}@{domain}")


def is_email_address(value: object) -> bool:
    try:
        validate_email_address(value)
    except ValidationError:
        return False
    return True

"""Text a task stores for the admin to show later (a bulk migration's reasons, a
simulation's failure). A task runs in English, the API's language, and its
readers each read the admin in their own: the text is stored as said in English
and, beside it, as said in each other admin language, and the page picks the
reader's. Text stored before, or said only in English (an error's words from
deeper down), reads in English."""

from collections.abc import Callable

from django.utils import translation

from common.customer_text import ADMIN_LANGUAGES as LANGUAGES
from common.customer_text import DEFAULT_LANGUAGE


def said_in_other_languages(say: Callable[[], str]) -> dict[str, str]:
    """What `say()` says in each admin language but English: {'fr': ..., 'de': ...}.
    `say` is called once a language, under that language; it should only read."""
    words = {}
    for language in LANGUAGES:
        if language != DEFAULT_LANGUAGE:
            with translation.override(language):
                words[language] = str(say())
    return words


def in_readers_language(english: str, words: dict[str, str] | None) -> str:
    """The stored text in the language active for this request (the admin user's),
    English when it was not stored in that language."""
    return (words or {}).get(translation.get_language() or DEFAULT_LANGUAGE) or english

"""Templates of installed apps, with nested_admin's inline "Remove" link in the
admin user's language.

nested_admin (plan versions' charges, tiers and features) writes its inline
forms' "Remove" link as a bare word in its templates, so a French or German user
read it in English. Its templates are read here as they are, that one word put
under {% translate %}: Django's own admin catalog says "Enlever" and "Entfernen".
Everything else in them, "Add another …" included, is translated already."""

from django.template.loaders import app_directories

# nested_admin's inline templates that write the bare word.
NESTED_INLINES = frozenset(
    {
        "nesting/admin/inlines/tabular.html",
        "nesting/admin/inlines/stacked.html",
        "nesting/admin/inlines/polymorphic_stacked.html",
    }
)
BARE = '">Remove</a>'
TRANSLATED = '">{% translate "Remove" %}</a>'


def remove_translated(source: str) -> str:
    """The template's source, its "Remove" links translated (it loads i18n already)."""
    return source.replace(BARE, TRANSLATED)


class Loader(app_directories.Loader):
    """django.template.loaders.app_directories.Loader, nested_admin's inlines mended."""

    def get_contents(self, origin):
        source = super().get_contents(origin)
        if origin.template_name in NESTED_INLINES:
            return remove_translated(source)
        return source

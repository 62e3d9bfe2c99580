"""Shows a domain refusal (BillingError) as form errors in the admin."""

from django import forms

from billing.errors import BillingError


def add_billing_error(
    form: forms.BaseForm, error: BillingError, field_map: dict[str, str] | None = None
) -> None:
    """Put each of the error's field messages on the matching form field, the rest on top."""
    field_map = field_map or {}
    if not error.fields:
        form.add_error(None, error.message)
        return
    for path, messages in error.fields.items():
        name = field_map.get(path, path)
        for message in messages:
            if name in form.fields and not form.fields[name].disabled:
                form.add_error(name, message)
            else:
                form.add_error(None, f"{path}: {message}")


class ServiceValidatedForm(forms.ModelForm):
    """A model form whose clean() runs a domain validator and shows its refusals."""

    field_map: dict[str, str] = {}

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                self.validate_domain(cleaned)
            except BillingError as error:
                add_billing_error(self, error, self.field_map)
        return cleaned

    def validate_domain(self, cleaned: dict) -> None:
        raise NotImplementedError

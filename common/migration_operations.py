"""Migration operations of our own.

AlterFields: Django's AlterField for many fields of one model at once. Each
AlterField reloads its model (and, for a relation or a referenced field, the models
related to it) in the migration state; a migration that changes the words of 190
fields (their verbose names and help texts, which the database never sees) reloaded
models 190 times, and the five such migrations took three quarters of the time a
new database takes to migrate (every test run makes one a process). This one
changes the fields in the state, then reloads the model once. What it does to the
state and to the database is what the AlterFields it stands for did, field by field.

When every field changes only its words (verbose name, help text), nothing is
reloaded: the rendered models keep their field objects, with the old words, which no
operation or data migration reads (the database is the same either way), and the
next reload of the model renders the new ones from the state. A relation's reload is
that of every model related to it, recursively: most of the catalog, a third of a
new database's migrate.
"""

from django.db.migrations.operations.base import Operation
from django.db.migrations.utils import field_is_referenced

WORDS = frozenset({"verbose_name", "help_text"})


def words_only(old, new) -> bool:
    """Whether `new` differs from `old` in its words alone (WORDS)."""
    old_path, old_args, old_kwargs = old.deconstruct()[1:]
    new_path, new_args, new_kwargs = new.deconstruct()[1:]
    for kwargs in (old_kwargs, new_kwargs):
        for word in WORDS:
            kwargs.pop(word, None)
    return (old_path, old_args, old_kwargs) == (new_path, new_args, new_kwargs)


class AlterFields(Operation):
    """AlterField (preserve_default, the default) of each (name, field) of
    `model_name`, in order, the model reloaded once at the end."""

    reduces_to_sql = False
    reversible = True

    def __init__(self, model_name, fields):
        self.model_name = model_name
        self.fields = list(fields)

    @property
    def model_name_lower(self):
        return self.model_name.lower()

    def deconstruct(self):
        return (self.__class__.__name__, [], {"model_name": self.model_name, "fields": self.fields})

    def state_forwards(self, app_label, state):
        # ProjectState.alter_field, but for every field before one reload.
        model_key = app_label, self.model_name_lower
        fields = state.models[model_key].fields
        delay = True
        reload = False
        for name, field in self.fields:
            reload = reload or not words_only(fields[name], field)
            if state._relations is not None:
                old_field = fields.pop(name)
                if old_field.is_relation:
                    state.resolve_model_field_relations(model_key, name, old_field)
                fields[name] = field
                if field.is_relation:
                    state.resolve_model_field_relations(model_key, name, field)
            else:
                fields[name] = field
            if field.is_relation or field_is_referenced(state, model_key, (name, field)):
                delay = False
        if reload:
            state.reload_model(*model_key, delay=delay)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        to_model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, to_model):
            from_model = from_state.apps.get_model(app_label, self.model_name)
            for name, _ in self.fields:
                schema_editor.alter_field(
                    from_model, from_model._meta.get_field(name), to_model._meta.get_field(name)
                )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self.database_forwards(app_label, schema_editor, from_state, to_state)

    def describe(self):
        names = ", ".join(name for name, _ in self.fields)
        return f"Alter fields {names} on {self.model_name}"

    @property
    def migration_name_fragment(self):
        return f"alter_{self.model_name_lower}_fields"

"""AlterFields (common.migration_operations): the state it leaves, rendered or
not, and when it reloads the rendered models."""

from django.db import models
from django.db.migrations.state import ModelState, ProjectState

from common.migration_operations import AlterFields, words_only


def project() -> ProjectState:
    state = ProjectState()
    state.add_model(
        ModelState(
            "shop",
            "Owner",
            [("id", models.AutoField(primary_key=True)), ("name", models.CharField(max_length=10))],
        )
    )
    state.add_model(
        ModelState(
            "shop",
            "Pet",
            [
                ("id", models.AutoField(primary_key=True)),
                ("name", models.CharField(max_length=10, verbose_name="name")),
                ("owner", models.ForeignKey("shop.Owner", models.CASCADE, verbose_name="owner")),
            ],
        )
    )
    return state


def pet_field(state: ProjectState, name: str):
    return state.apps.get_model("shop", "Pet")._meta.get_field(name)


def test_words_only_tells_a_change_of_words_from_a_change_of_the_column():
    old = models.CharField(max_length=10, verbose_name="name")
    assert words_only(old, models.CharField(max_length=10, verbose_name="nom", help_text="?"))
    assert not words_only(old, models.CharField(max_length=20, verbose_name="nom"))
    assert not words_only(old, models.TextField(verbose_name="name"))
    assert not words_only(old, models.CharField(max_length=10, null=True, verbose_name="name"))


def test_new_words_are_in_the_state_and_in_the_models_rendered_after_it():
    # given a rendered state
    state = project()
    rendered = state.apps.get_model("shop", "Pet")

    # when the words of a field and of a relation change
    AlterFields(
        "Pet",
        [
            ("name", models.CharField(max_length=10, verbose_name="nom")),
            ("owner", models.ForeignKey("shop.Owner", models.CASCADE, verbose_name="maître")),
        ],
    ).state_forwards("shop", state)

    # then the state has them, the rendered model is left as it was (nothing in the
    # database differs), and the next render of the model reads them
    fields = state.models["shop", "pet"].fields
    assert (fields["name"].verbose_name, fields["owner"].verbose_name) == ("nom", "maître")
    assert state.apps.get_model("shop", "Pet") is rendered
    state.reload_model("shop", "pet")
    assert (pet_field(state, "name").verbose_name, pet_field(state, "owner").verbose_name) == (
        "nom",
        "maître",
    )


def test_a_change_of_the_column_is_rendered_at_once():
    state = project()
    state.apps.get_model("shop", "Pet")

    AlterFields(
        "Pet",
        [
            ("name", models.CharField(max_length=40, verbose_name="nom")),
            ("owner", models.ForeignKey("shop.Owner", models.CASCADE, verbose_name="maître")),
        ],
    ).state_forwards("shop", state)

    assert pet_field(state, "name").max_length == 40
    assert pet_field(state, "owner").verbose_name == "maître"

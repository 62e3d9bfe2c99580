"""The project says one version everywhere an operator reads it (issue 90):
pyproject.toml, the image's label (the Containerfile's VERSION), /healthz
(config.version) and CHANGELOG.md, whose newest section is that version's, with an
upgrade note; .ci/previous-release names a release the changelog has."""

import re
import tomllib
from pathlib import Path

from config.version import VERSION

ROOT = Path(__file__).resolve().parent.parent


def pyproject_version() -> str:
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]["version"]


def test_the_image_label_and_healthz_say_the_pyproject_version():
    containerfile = (ROOT / "Containerfile").read_text()

    label = re.search(r"^ARG VERSION=(\S+)$", containerfile, re.MULTILINE)

    assert label is not None
    assert label.group(1) == pyproject_version() == VERSION


def test_the_changelog_opens_on_this_version_and_notes_each_upgrade():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    sections = re.split(r"^## ", changelog, flags=re.MULTILINE)[1:]
    versions = [section.split()[0] for section in sections]

    assert versions[0] == pyproject_version().removesuffix(".dev0")
    assert all("### Upgrading" in section for section in sections), versions


def test_the_upgrade_drill_starts_from_a_release_of_the_changelog():
    version, commit = (ROOT / ".ci" / "previous-release").read_text().split()[:2]
    changelog = (ROOT / "CHANGELOG.md").read_text()

    assert re.fullmatch(r"v\d+\.\d+\.\d+", version)
    assert re.fullmatch(r"[0-9a-f]{40}", commit)
    assert re.search(rf"^## {re.escape(version[1:])} .*{commit[:7]}", changelog, re.MULTILINE)

"""The benchmarks start in a fresh clone: bench.common compiles the translation
catalogs (build output, which a process with DEBUG off refuses to start without) before
it sets Django up, as scripts/run.sh does."""

import os
import shutil
from pathlib import Path

import django

from bench import common
from config.catalogs import stale_catalogs

ROOT = Path(__file__).resolve().parent.parent


def test_translations_compile_leaves_no_catalog_missing(tmp_path):
    # given: a checkout's catalog, never compiled
    po = tmp_path / "fr" / "LC_MESSAGES" / "django.po"
    po.parent.mkdir(parents=True)
    shutil.copy(ROOT / "locale" / "fr" / "LC_MESSAGES" / "django.po", po)
    assert stale_catalogs([tmp_path]) == [f"{po.with_suffix('.mo')}: missing"]

    # when
    common.translations_compile([tmp_path])

    # then
    assert stale_catalogs([tmp_path]) == []


def test_django_setup_compiles_the_catalogs_before_django_starts(monkeypatch):
    done = []
    monkeypatch.setattr(common, "translations_compile", lambda: done.append("compiled"))
    monkeypatch.setattr(django, "setup", lambda: done.append("django set up"))
    # django_setup writes the benchmark's environment: a copy, dropped after the test.
    monkeypatch.setattr(os, "environ", dict(os.environ))

    common.django_setup("postgres://postgres@127.0.0.1:5432/unused")

    assert done == ["compiled", "django set up"]

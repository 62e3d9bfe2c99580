"""The import graph of the application: no module imports one that imports it back,
however long the way round (lint-imports checks siblings within a package; this
checks the whole graph), and every task a service sends by name exists."""

import re
import sys
from pathlib import Path

import grimp
import pytest

from common.task_sending import enqueue_on_commit
from config.celery import app

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("billing", "plans", "invoices", "wallets", "customers", "config")


def import_cycles(graph) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm,
    with an explicit stack: the graph has more modules than Python's recursion limit
    would like)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []

    def imported_by(module: str):
        return iter(sorted(graph.find_modules_directly_imported_by(module)))

    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, imported_by(root))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, imported = work[-1]
            for other in imported:
                if other not in index:
                    index[other] = low[other] = len(index)
                    stack.append(other)
                    on_stack.add(other)
                    work.append(
                        (other, iter(sorted(graph.find_modules_directly_imported_by(other))))
                    )
                    break
                if other in on_stack:
                    low[module] = min(low[module], index[other])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
                if low[module] == index[module]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == module:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
    return groups


@pytest.fixture(scope="module")
def graph():
    sys.path.insert(0, str(ROOT))
    try:
        return grimp.build_graph(*PACKAGES, cache_dir=None)
    finally:
        sys.path.remove(str(ROOT))


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for module in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(module)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.z")
    graph.add_import(importer="a.z", imported="a.x")
    assert import_cycles(graph) == [["a.x", "a.y", "a.z"]]
    graph.remove_import(importer="a.z", imported="a.x")
    assert import_cycles(graph) == []


def test_no_module_imports_one_that_imports_it_back(graph):
    # Imports inside functions count: a lazy import is still a way round.
    assert import_cycles(graph) == []


def test_no_service_imports_a_tasks_module(graph):
    tasks_modules = {m for m in graph.modules if m.rsplit(".", 1)[-1] == "tasks"}
    importers = {
        importer
        for tasks_module in tasks_modules
        for importer in graph.find_modules_that_directly_import(tasks_module)
    }
    # The Celery app loads them (autodiscovery, by name); tests and the commands that
    # run a task by hand are interfaces.
    assert {m for m in importers if ".management." not in m} == set()


SENT = re.compile(rf"\"((?:{'|'.join(PACKAGES)})(?:\.\w+)*\.tasks\.\w+)\"")


def test_every_task_sent_by_name_is_registered():
    names = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            names.update(SENT.findall(path.read_text(encoding="utf-8")))
    assert len(names) >= 15  # the scan finds what services send
    app.loader.import_default_modules()
    assert sorted(name for name in names if name not in app.tasks) == []


def test_an_unknown_task_name_is_refused_at_once():
    with pytest.raises(KeyError):
        enqueue_on_commit("invoices.tasks.no_such_task", 1)

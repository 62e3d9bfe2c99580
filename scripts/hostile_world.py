"""What the hostile surface cases share (scripts/hostile_surfaces.py runs them): a
Case is a name and a check that returns its problems; the World holds the run's name,
a client per kind of key, and counts the server's 5xx answers."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from hostile_ingest import Client


@dataclass
class Case:
    name: str
    # Calls the server; returns what went against the contract (empty: none).
    check: Callable[[], list[str]]


@dataclass
class World:
    run: str
    clients: dict[str, Client]
    server_errors: int = 0
    made: dict = field(default_factory=dict)  # what setups made, by name, for later cases

    def call(self, kind: str, method: str, path: str, payload=None) -> tuple[int, bytes]:
        """One request with the key of this kind; a JSON body when `payload` is given."""
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        status, data = self.clients[kind].request(method, path, body, headers)
        if status >= 500:
            self.server_errors += 1
        return status, data

    def json(self, kind: str, method: str, path: str, payload=None) -> tuple[int, object]:
        status, data = self.call(kind, method, path, payload)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, None

    def made_with(self, kind: str, method: str, path: str, payload, expect=(200, 201)):
        """A setup request that must succeed: its answer, or SystemExit saying why."""
        status, answer = self.json(kind, method, path, payload)
        if status not in expect:
            raise SystemExit(f"{method} {path}: {status} {answer}")
        return answer


def path_id(text: str) -> str:
    """An id as a path segment (a customer's id may hold " & = + @)."""
    return quote(text, safe="")

"""What the hostile surface cases share (scripts/hostile_surfaces.py runs them): a
Case is a name and a check that returns its problems; the World holds the run's name,
a client per kind of key, and counts the server's 5xx answers."""

import http.client
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlsplit

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
    # A staff user's {"url", "username", "password"} for the admin's pages (its CSVs).
    staff: dict | None = None
    _cookies: dict = field(default_factory=dict)

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

    def staff_get(self, path: str) -> tuple[int, bytes]:
        """GET an admin page as the staff user, logged in on the first call."""
        if not self._cookies:
            self._login()
        return self._page("GET", path)

    def _page(self, method: str, path: str, body: bytes | None = None, headers=None):
        parts = urlsplit(self.staff["url"])
        connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=60)
        try:
            sent = dict(headers or {})
            if self._cookies:
                sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self._cookies.items())
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            for header, value in response.getheaders():
                if header.lower() == "set-cookie":
                    name, _, rest = value.partition("=")
                    self._cookies[name.strip()] = rest.split(";", 1)[0]
            data = response.read()
            if response.status >= 500:
                self.server_errors += 1
            return response.status, data
        finally:
            connection.close()

    def _login(self) -> None:
        status, page = self._page("GET", "/admin/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if status != 200 or token is None:
            raise SystemExit(f"the admin's login page: {status}")
        form = {
            "csrfmiddlewaretoken": token.group(1).decode(),
            "username": self.staff["username"],
            "password": self.staff["password"],
            "next": "/admin/",
        }
        status, _ = self._page(
            "POST",
            "/admin/login/",
            urlencode(form).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        if status != 302 or "sessionid" not in self._cookies:
            raise SystemExit(f"logging in to the admin: {status}")


def path_id(text: str) -> str:
    """An id as a path segment (a customer's id may hold " & = + @)."""
    return quote(text, safe="")


def meter_made(world: World, code: str) -> str:
    """A count meter of the run's event `code` (event name "<run>.<code>"), grouped
    by model: its code, "<run>_<code>"."""
    meter = f"{world.run}_{code}"
    world.made_with(
        "all",
        "POST",
        "/api/v1/meters",
        {
            "code": meter,
            "name": code,
            "event_name": f"{world.run}.{code}",
            "aggregation": "count",
            "group_by": ["model"],
        },
    )
    return meter


def plan_made(world: World, code: str, meter: str, *, fee: str, unit_price: str = "0") -> None:
    """A published monthly USD plan of this base fee, with one overage charge on the
    meter at this unit price and nothing included."""
    pricing = {"scheme": "per_unit", "unit_price": unit_price}
    charge = {"meter": meter, "model": "overage", "included_units": "0", "pricing": pricing}
    world.made_with(
        "all",
        "POST",
        "/api/v1/plans",
        {
            "code": code,
            "name": code,
            "currency": "USD",
            "interval": "month",
            "base_fee": fee,
            "publish": True,
            "charges": [charge],
        },
    )

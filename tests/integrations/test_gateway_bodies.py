"""The bodies of the gateway endpoints (billing.api.integrations): up to
BILLING_INTEGRATION_MAX_BODY (32 MiB: LiteLLM's default batch of 512 calls with long
prompts passes 8 MB, and LiteLLM drops a batch answered 413), and gzip bodies of any
number of members unpacked with work linear in their size (body_unpacked), a bomb
refused once the limit is passed, a member cut short or followed by garbage a 400.
How fast 4 MB of empty members is answered is bench/gateways.py's figure."""

import gzip
import json
import os
import random
import zlib

import pytest
import time_machine
from django.conf import settings

from billing.api.events import PayloadTooLarge
from billing.api.integrations import UNPACK_FEED_MOST, body_unpacked
from billing.models import UsageEvent
from common.errors import InvalidRequest
from tests.factories import api_client
from tests.integrations.test_litellm_ingest import NOW, payload

MIB = 1024 * 1024
LIMIT = 32 * MIB


def member(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


EMPTY = member(b"")


def post(body: bytes, **headers):
    with time_machine.travel(NOW, tick=False):
        return api_client("events:write").post(
            "/api/v1/integrations/litellm", data=body, content_type="application/json", **headers
        )


def test_the_limit_is_32_mib():
    assert settings.BILLING_INTEGRATION_MAX_BODY == LIMIT


def test_members_of_every_size_unpack_to_their_data_in_order():
    rng = random.Random(92)
    pieces = [b"", b"x", os.urandom(3 * UNPACK_FEED_MOST + 17), b"", b"{}" * 5000]
    pieces += [rng.randbytes(rng.randrange(0, 300)) for _ in range(2000)]
    pieces += [b""] * 20_000 + [os.urandom(100_000)]
    rng.shuffle(pieces)
    body = b"".join(map(member, pieces))

    unpacked = body_unpacked(body, "gzip", limit=LIMIT)

    assert unpacked == b"".join(pieces)
    assert unpacked == gzip.decompress(body)


def test_a_body_cut_anywhere_but_between_members_is_a_400():
    first, second = member(b'[{"id": "a"}]'), member(b"x" * 300)
    body = first + second
    for cut in range(len(body)):
        if cut == len(first):
            assert body_unpacked(body[:cut], "gzip", limit=LIMIT) == b'[{"id": "a"}]'
            continue
        with pytest.raises(InvalidRequest, match="malformed gzip body"):
            body_unpacked(body[:cut], "gzip", limit=LIMIT)


@pytest.mark.parametrize(
    "body, encoding, message",
    [
        (EMPTY * 1000 + b"garbage", "gzip", "incorrect header check"),
        (EMPTY + b"\x1f\x8b", "gzip", "it ends before its data does"),
        (member(b"data")[:-4] + b"\x00\x00\x00\x00", "gzip", "incorrect length check"),
        (zlib.compress(b"data") + b"more", "deflate", "bytes after its end"),
        (zlib.compress(b"data") * 2, "deflate", "bytes after its end"),
    ],
)
def test_malformed_bodies_are_a_400_naming_why(body, encoding, message):
    with pytest.raises(InvalidRequest, match=message):
        body_unpacked(body, encoding, limit=LIMIT)


def test_a_deflate_body_unpacks():
    assert body_unpacked(zlib.compress(b"data" * 1000), "deflate", limit=LIMIT) == b"data" * 1000


def test_a_bomb_is_refused_once_past_the_limit_not_unpacked_whole(monkeypatch):
    """A body unpacking to 200 MB is refused when 1 MB and a byte have come out."""
    made = []
    decompressobj = zlib.decompressobj

    class Counted:
        def __init__(self, wbits):
            self.unpacker = decompressobj(wbits)
            self.out = 0
            made.append(self)

        def decompress(self, data, max_length=0):
            out = self.unpacker.decompress(data, max_length)
            self.out += len(out)
            return out

        def __getattr__(self, name):
            return getattr(self.unpacker, name)

    packed = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(packed.compress(b"\x00" * MIB) for _ in range(200)) + packed.flush()
    assert len(bomb) < 300_000
    monkeypatch.setattr(zlib, "decompressobj", Counted)

    with pytest.raises(PayloadTooLarge, match=f"over {MIB} bytes unpacked"):
        body_unpacked(bomb, "gzip", limit=MIB)

    assert sum(unpacker.out for unpacker in made) == MIB + 1
    # Exactly the limit is taken.
    assert len(body_unpacked(member(b"\x00" * MIB), "gzip", limit=MIB)) == MIB


def test_4_mb_of_empty_gzip_members_are_answered_not_a_500(s35):
    members = EMPTY * (4 * MIB // len(EMPTY))

    answer = post(members, HTTP_CONTENT_ENCODING="gzip")

    # They unpack to nothing, which is no batch.
    assert answer.status_code == 400, answer.content[:300]
    assert answer.json()["error"]["message"].startswith("malformed JSON")
    assert not UsageEvent.objects.exists()


def test_a_batch_after_4_mb_of_empty_members_is_billed(s35):
    members = EMPTY * (4 * MIB // len(EMPTY))
    batch = member(json.dumps([payload("after-members")]).encode())

    answer = post(members + batch, HTTP_CONTENT_ENCODING="gzip")

    assert answer.status_code == 202, answer.content[:300]
    assert (answer.json()["calls"], answer.json()["accepted"]) == (1, 3)


def test_litellms_default_batch_of_long_prompts_is_taken_up_to_32_mib(s35):
    """512 calls of 60 KB of prompt each: 31 MiB, past the old 8 MB limit."""
    calls = [payload(f"long-{n}") for n in range(512)]
    for call in calls:
        call["messages"] = [{"role": "user", "content": "x" * (60 * 1024)}]
    body = json.dumps(calls).encode()
    assert 30 * MIB < len(body) < LIMIT

    answer = post(body)

    assert answer.status_code == 202, answer.content[:300]
    assert (answer.json()["calls"], answer.json()["accepted"]) == (512, 3 * 512)
    # Gzipped, the same.
    again = post(gzip.compress(body), HTTP_CONTENT_ENCODING="gzip")
    assert (again.status_code, again.json()["duplicates"]) == (202, 3 * 512)

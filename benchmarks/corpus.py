"""Deterministic corpus of Firehose transformation events carrying DynamoDB change records.

Seeded RNG, realistic mix: ~55% INSERT, ~33% MODIFY (NEW_AND_OLD_IMAGES, so both images),
~12% REMOVE (a third of them TTL deletes); compact change records of 1.3-2.9 KB (mean 1.8 KB)
with nested maps, lists of maps, string/number sets, decimals, large integers, binary, nulls, a
little non-ASCII text and a few tiny decimals. Timestamps are microsecond precision (this
project's streaming destination setting) with a few millisecond ones.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import random
from typing import Any

__all__ = ["DEFAULT_SEED", "make_change_record", "make_events", "make_records"]

DEFAULT_SEED = 20240611
_WORDS = (
    *("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"),
    *("kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"),
    *("uniform", "victor", "whiskey", "xray", "yankee", "zulu", "café", "naïve", "straße", "東京"),
    "données",
)
_STATUSES = ("PENDING", "PAID", "PACKED", "SHIPPED", "DELIVERED", "CANCELLED")
_CITIES = ("London", "Paris", "Berlin", "Madrid", "Zürich", "Dublin", "Lisbon", "Kraków")
_BASE_US = 1_717_171_717_000_000  # 2024-05-31T16:08:37Z


def _words(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(lo, hi)))


def _money(rng: random.Random, hi: float) -> str:
    cents = rng.randint(1, int(hi * 100))
    text = f"{cents // 100}.{cents % 100:02d}".rstrip("0").rstrip(".")
    return text  # DynamoDB strips trailing zeros


def _coord(rng: random.Random, lo: float, hi: float) -> str:
    return f"{rng.uniform(lo, hi):.4f}".rstrip("0").rstrip(".")


def _item(rng: random.Random, customer: int, order: int) -> dict[str, Any]:
    line_items = []
    for n in range(rng.randint(1, 2)):
        li: dict[str, Any] = {
            "sku": {"S": f"SKU-{rng.randint(10000, 99999)}"},
            "name": {"S": _words(rng, 1, 3)},
            "qty": {"N": str(rng.randint(1, 5))},
            "unitPrice": {"N": _money(rng, 250)},
            "lineNo": {"N": str(n + 1)},
        }
        if rng.random() < 0.3:
            li["discounts"] = {"L": [{"N": _money(rng, 20)} for _ in range(rng.randint(1, 2))]}
        line_items.append({"M": li})
    item: dict[str, Any] = {
        "pk": {"S": f"CUSTOMER#{customer}"},
        "sk": {"S": f"ORDER#2024-06-{rng.randint(1, 28):02d}#{order}"},
        "status": {"S": rng.choice(_STATUSES)},
        "total": {"N": _money(rng, 900)},
        "currency": {"S": rng.choice(("EUR", "GBP", "USD", "CHF"))},
        "itemCount": {"N": str(len(line_items))},
        "createdAt": {"S": f"2024-06-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:12:03.512Z"},
        "updatedAt": {"N": str(1_717_171_717_000 + rng.randint(0, 10**9))},
        "version": {"N": str(rng.randint(1, 20))},
        "isGift": {"BOOL": rng.random() < 0.2},
        "giftMessage": {"NULL": True} if rng.random() < 0.7 else {"S": _words(rng, 3, 10)},
        "tags": {"SS": sorted({rng.choice(_WORDS) for _ in range(rng.randint(1, 4))})},
        "ratings": {"NS": [*sorted({str(rng.randint(1, 5)) for _ in range(rng.randint(1, 3))}), "4.5"]},
        "pointsMicros": {"N": str(rng.randint(10**18, 10**22))},
        "shipTo": {
            "M": {
                "line1": {"S": f"{rng.randint(1, 300)} {_words(rng, 1, 2)} street"},
                "city": {"S": rng.choice(_CITIES)},
                "postcode": {"S": f"{rng.randint(1000, 99999)}"},
                "country": {"S": rng.choice(("GB", "FR", "DE", "ES", "CH", "IE", "PT", "PL"))},
                "geo": {"M": {"lat": {"N": _coord(rng, 35, 60)}, "lon": {"N": _coord(rng, -9, 20)}}},
            }
        },
        "lineItems": {"L": line_items},
        "customer": {
            "M": {
                "id": {"S": str(customer)},
                "tier": {"S": rng.choice(("bronze", "silver", "gold"))},
                "prefs": {
                    "M": {
                        "newsletter": {"BOOL": rng.random() < 0.5},
                        "language": {"S": rng.choice(("en", "fr", "de", "es"))},
                    }
                },
            }
        },
        "notes": {"S": _words(rng, 1, 5)},
        "ttl": {"N": str(1_750_000_000 + rng.randint(0, 10**7))},
    }
    if rng.random() < 0.25:
        item["receiptDigest"] = {"B": base64.b64encode(rng.randbytes(32)).decode()}
    if rng.random() < 0.05:
        # Tiny decimals, which a float round trip would turn into exponent notation.
        item["fxDelta"] = {"N": f"0.0000{rng.randint(1, 99999)}"}
    return item


def make_change_record(rng: random.Random, seq: int) -> dict[str, Any]:
    """One "Kinesis Data Streams for DynamoDB" change record (as decoded JSON)."""
    customer, order = rng.randint(1, 50_000), rng.randint(1, 10**6)
    item = _item(rng, customer, order)
    keys = {"pk": item["pk"], "sk": item["sk"]}
    roll = rng.random()
    ts_us = _BASE_US + seq * 1_700 + rng.randint(0, 999)
    # Field order as AWS writes it.
    ddb: dict[str, Any] = {"ApproximateCreationDateTime": ts_us, "Keys": keys}
    if rng.random() < 0.1:
        ddb["ApproximateCreationDateTime"] = ts_us // 1000  # a millisecond-precision stream
    identity = None
    if roll < 0.55:
        name = "INSERT"
        ddb["NewImage"] = item
    elif roll < 0.88:
        name = "MODIFY"
        old = copy.deepcopy(item)
        old["status"] = {"S": rng.choice(_STATUSES)}
        old["version"] = {"N": str(max(1, int(item["version"]["N"]) - 1))}
        old["updatedAt"] = {"N": str(int(item["updatedAt"]["N"]) - rng.randint(1000, 10**7))}
        ddb["NewImage"] = item
        ddb["OldImage"] = old
    else:
        name = "REMOVE"
        ddb["OldImage"] = item
        if rng.random() < 0.33:
            identity = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    ddb["SizeBytes"] = rng.randint(300, 1500)
    if ddb["ApproximateCreationDateTime"] == ts_us:
        ddb["ApproximateCreationDateTimePrecision"] = "MICROSECOND"
    return {
        "awsRegion": "eu-west-1",
        "eventID": f"{rng.getrandbits(128):032x}"[:8] + "-" + f"{rng.getrandbits(64):016x}",
        "eventName": name,
        "userIdentity": identity,
        "recordFormat": "application/json",
        "tableName": "orders",
        "dynamodb": ddb,
        "eventSource": "aws:dynamodb",
    }


def make_records(target_bytes: int = 8 * 1024 * 1024, seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """Firehose input records whose decoded data totals about ``target_bytes``."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    total = 0
    seq = 0
    while total < target_bytes:
        change = make_change_record(rng, seq)
        raw = json.dumps(change, ensure_ascii=False, separators=(",", ":")).encode()
        total += len(raw)
        arrival_ms = (_BASE_US + seq * 1_700) // 1000 + 800
        pk = change["dynamodb"]["Keys"]["pk"]["S"]
        records.append(
            {
                "recordId": f"{49_546_986_683_135_544_286_507_457_936_321_625_675_700_192_471_156_785_154 + seq}",
                "approximateArrivalTimestamp": arrival_ms,
                "data": base64.b64encode(raw).decode(),
                "kinesisRecordMetadata": {
                    "shardId": f"shardId-{seq % 4:012d}",
                    "partitionKey": hashlib.md5(pk.encode()).hexdigest().upper(),
                    "approximateArrivalTimestamp": arrival_ms,
                    "sequenceNumber": f"{49_650_000_000_000_000_000_000_000_000_000_000_000_000_000 + seq * 7919}",
                    "subsequenceNumber": 0,
                },
            }
        )
        seq += 1
    return records


def make_events(records: list[dict[str, Any]], batch_bytes: int = 1024 * 1024) -> list[dict[str, Any]]:
    """Group records into Firehose events of about ``batch_bytes`` decoded data each."""
    events: list[dict[str, Any]] = []
    batch: list[dict[str, Any]] = []
    size = 0
    for record in records:
        n = len(record["data"]) * 3 // 4
        if batch and size + n > batch_bytes:
            events.append(_event(len(events), batch))
            batch, size = [], 0
        batch.append(record)
        size += n
    if batch:
        events.append(_event(len(events), batch))
    return events


def _event(n: int, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "invocationId": f"00540a87-5050-496a-84e4-e7d92bbaf5e{n % 10}",
        "deliveryStreamArn": "arn:aws:firehose:eu-west-1:111122223333:deliverystream/ddb-lake",
        "region": "eu-west-1",
        "sourceKinesisStreamArn": "arn:aws:kinesis:eu-west-1:111122223333:stream/ddb-changes",
        "records": records,
    }

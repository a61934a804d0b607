"""The event: one line of the service's log, the contract between the service and every reader.

One typed definition (`Event`, a msgspec Struct) encodes the line the service writes, validates a
line a reader decodes (types, ranges, the message names) and gives the Arrow schema of the
exported dataset (`ARROW_SCHEMA`). The service (`botify.service`), the exporter
(`script.event_parser`), the synthetic logs (`script.fake_logs`) and the trainer (`trainer.prepare`)
all import it from here.

Line format (DESIGN.md, plus `fallback`, `propensity` and `team`):
    {"message": "next"|"last", "timestamp": <ms since epoch>, "user": int, "track": int,
     "time": float in [0, 1], "latency": <seconds>, "recommendation": int|null,
     "experiments": {"<name>": "<arm>"}, "replica": str, "fallback": bool,
     "propensity": float in (0, 1] | null, "team": "a"|"b"|"both"|null}

`fallback` is true when the routed recommender could not answer from its own data (no list, Redis
down, no model) and the fallback answered: an arm that silently falls back is not the arm the
experiment meant to test. Logs written before it existed lack it; readers take it as false.

`propensity` (on `next` events; null on `last`) is the probability with which the arm chose the
served track given what it knew (`botify.recommenders.Recommendation.propensity`): 1/len(catalog)
for Random, 1/(the artist's tracks) for StickyArtist, 1/len(list) for Indexed, 1 for a
deterministic arm, the fallback's own when the fallback answered. Off-policy estimates
(`script.ope`) divide by it. Logs written before it existed lack it; readers take it as null
(unknown), never as a guess.

`team` is set by an interleaving arm (`botify.recommenders.interleave`): the side whose pick was
served ("both" when both sides picked it), null for every other arm; absent in older logs (null).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec
import pyarrow as pa

MESSAGES: Final = ("next", "last")
EXPERIMENT_PREFIX: Final = "exp_"  # dataset column of an experiment: exp_<name>

_INT64_MAX = 2**63 - 1
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0, le=_INT64_MAX)]
Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Seconds = Annotated[float, msgspec.Meta(ge=0.0)]
Probability = Annotated[float, msgspec.Meta(gt=0.0, le=1.0)]
ExperimentName = Annotated[str, msgspec.Meta(min_length=1)]
Team = Literal["a", "b", "both"]  # an interleaving arm's side whose pick was served


class Event(msgspec.Struct, frozen=True):
    """One logged request. Field order is the order of the JSON line."""

    message: Literal["next", "last"]
    timestamp: NonNegativeInt
    user: NonNegativeInt
    track: NonNegativeInt
    time: Fraction
    latency: Seconds
    recommendation: NonNegativeInt | None
    experiments: dict[ExperimentName, str]
    replica: str
    fallback: bool = False
    propensity: Probability | None = None
    team: Team | None = None


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Event)


def encode(event: Event) -> bytes:
    """The event's log line, newline included. Non-finite numbers cannot be encoded as JSON
    numbers, so they are refused here rather than written as `NaN`."""
    for value in (event.time, event.latency, event.propensity):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"non-finite number in event: {event}")
    return _ENCODER.encode(event) + b"\n"


def decode(line: bytes | str) -> Event:
    """Parse and validate one line; raises `msgspec.DecodeError` (a ValueError) saying why."""
    return _DECODER.decode(line)


#: The exported dataset's fixed columns, in order; `exp_<name>` string columns follow, sorted.
ARROW_SCHEMA: Final = pa.schema(
    [
        ("message", pa.string()),
        ("timestamp", pa.int64()),
        ("user", pa.int64()),
        ("track", pa.int64()),
        ("time", pa.float64()),
        ("latency", pa.float64()),
        ("recommendation", pa.int64()),
        ("replica", pa.string()),
        ("fallback", pa.bool_()),
        ("propensity", pa.float64()),
        ("team", pa.string()),
    ]
)
# Every Event field is a column, except `experiments`, which becomes the exp_<name> columns.
assert ARROW_SCHEMA.names == [f for f in Event.__struct_fields__ if f != "experiments"]

"""CDRs and channel events (CEL) as Asterisk hands them over, made into rows.

A CDR reaches the service twice: live, as an AMI `Cdr` event, and in the backstop
file Asterisk writes itself (cdr_custom, one JSON object a line). Both carry the
same key, (uniqueid, sequence), and the same epoch times with microseconds, so
the row is the same whichever lands first, and the second is a no-op. Channel
events come from their own file (cel_custom) only; see asterisk_conf/cel.conf.

Every function here is pure; a record that cannot be made into a row raises
BadRecord with the reason, and the caller logs and skips it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# AMI header -> column; the epoch times come from cdr_manager.conf's mappings
_AMI_TEXT = {
    "UniqueID": "uniqueid",
    "LinkedID": "linkedid",
    "Channel": "channel",
    "DestinationChannel": "dstchannel",
    "Source": "src",
    "Destination": "dst",
    "DestinationContext": "dcontext",
    "CallerID": "clid",
    "LastApplication": "lastapp",
    "LastData": "lastdata",
    "Disposition": "disposition",
    "AMAFlags": "amaflags",
    "AccountCode": "accountcode",
    "UserField": "userfield",
}
_BACKSTOP_TEXT = (
    "uniqueid",
    "linkedid",
    "channel",
    "dstchannel",
    "src",
    "dst",
    "dcontext",
    "clid",
    "lastapp",
    "lastdata",
    "disposition",
    "amaflags",
    "accountcode",
    "peeraccount",
    "userfield",
)
_CEL_TEXT = {  # backstop field -> column
    "uniqueid": "uniqueid",
    "linkedid": "linkedid",
    "channame": "channel",
    "num": "caller",
    "name": "caller_name",
    "exten": "exten",
    "context": "context",
    "appname": "app",
    "appdata": "appdata",
    "peer": "peer",
}
TEXT_LIMIT = 200  # longer values (lastdata, appdata) are cut: a row is never refused for length


class BadRecord(ValueError):
    """A CDR or channel event that cannot be stored, with the reason."""


def _text(value: Any) -> str:
    return ("" if value is None else str(value))[:TEXT_LIMIT]


def _epoch(value: Any, name: str, *, optional: bool = False) -> datetime | None:
    """Epoch seconds to UTC; Asterisk writes 0 for a time that never came (no answer)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise BadRecord(f"{name} is not an epoch time: {value!r}") from None
    if seconds == 0 and optional:
        return None
    if not 0 < seconds < 32503680000:  # year 3000
        raise BadRecord(f"{name} is out of range: {value!r}")
    return datetime.fromtimestamp(seconds, UTC)


def _whole(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRecord(f"{name} is not a whole number: {value!r}") from None
    if number < 0:
        raise BadRecord(f"{name} is negative: {value!r}")
    return number


def _cdr(
    texts: dict[str, str], sequence: Any, times: tuple[Any, Any, Any], counts: tuple[Any, Any]
) -> dict[str, Any]:
    if not texts["uniqueid"]:
        raise BadRecord("the CDR has no uniqueid")
    start, answer, end = times
    row: dict[str, Any] = {
        **texts,
        "sequence": _whole(sequence, "sequence"),
        "start": _epoch(start, "start"),
        "answer": _epoch(answer, "answer", optional=True),
        "end": _epoch(end, "end"),
        "duration": _whole(counts[0], "duration"),
        "billsec": _whole(counts[1], "billsec"),
    }
    if row["end"] < row["start"]:
        raise BadRecord("the CDR ends before it starts")
    return row


def cdr_from_ami(fields: Mapping[str, str]) -> dict[str, Any]:
    """One AMI `Cdr` event as a `cdr` row."""
    texts = {column: _text(fields.get(header)) for header, column in _AMI_TEXT.items()}
    texts["peeraccount"] = ""
    times = (fields.get("StartEpoch"), fields.get("AnswerEpoch"), fields.get("EndEpoch"))
    counts = (fields.get("Duration"), fields.get("BillableSeconds"))
    return {**_cdr(texts, fields.get("Sequence"), times, counts), "source": "ami"}


def cdr_from_backstop(line: bytes) -> dict[str, Any]:
    """One line of the CDR backstop file as a `cdr` row."""
    record = _object(line)
    texts = {column: _text(record.get(column)) for column in _BACKSTOP_TEXT}
    times = (record.get("start"), record.get("answer"), record.get("end"))
    counts = (record.get("duration"), record.get("billsec"))
    return {**_cdr(texts, record.get("sequence"), times, counts), "source": "backstop"}


def cel_from_backstop(line: bytes) -> dict[str, Any]:
    """One line of the CEL file as a `cel` row; `extra` is the event's own JSON, parsed."""
    record = _object(line)
    event = _text(record.get("eventtype"))
    if not event or not record.get("uniqueid"):
        raise BadRecord("the channel event has no type or no uniqueid")
    extra: Any = record.get("eventextra") or None
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            extra = {"text": extra[:TEXT_LIMIT]}
    return {
        "event": event,
        "at": _epoch(record.get("eventtime"), "eventtime"),
        **{column: _text(record.get(field)) for field, column in _CEL_TEXT.items()},
        "extra": extra,
    }


def _object(line: bytes) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise BadRecord(f"not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise BadRecord("not a JSON object")
    return record

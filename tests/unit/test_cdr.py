"""CDRs and channel events made into rows, and the backstop file read from a checkpoint."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ari_app.adapters.backstop import Checkpoint, read_lines
from ari_app.domain.cdr import BadRecord, cdr_from_ami, cdr_from_backstop, cel_from_backstop

# what Asterisk 22 sent and wrote for one leg of the same call (cdr_manager, cdr_custom)
AMI = {
    "Event": "Cdr",
    "AccountCode": "",
    "Source": "5551234",
    "Destination": "100",
    "DestinationContext": "from-carrier",
    "CallerID": '"" <5551234>',
    "Channel": "PJSIP/carrier-00000000",
    "DestinationChannel": "",
    "LastApplication": "Stasis",
    "LastData": "ari-app",
    "StartTime": "2026-11-25 20:56:24",
    "AnswerTime": "2026-11-25 20:56:24",
    "EndTime": "2026-11-25 20:56:25",
    "Duration": "1",
    "BillableSeconds": "1",
    "Disposition": "ANSWERED",
    "AMAFlags": "DOCUMENTATION",
    "UniqueID": "1795640184.0",
    "UserField": "",
    "LinkedID": "1795640184.0",
    "Sequence": "0",
    "StartEpoch": "1795640184.479747",
    "AnswerEpoch": "1795640184.482880",
    "EndEpoch": "1795640185.483334",
}
LINE = json.dumps(
    {
        "uniqueid": "1795640184.0",
        "sequence": 0,
        "linkedid": "1795640184.0",
        "clid": '"" <5551234>',
        "src": "5551234",
        "dst": "100",
        "dcontext": "from-carrier",
        "channel": "PJSIP/carrier-00000000",
        "dstchannel": "",
        "lastapp": "Stasis",
        "lastdata": "ari-app",
        "start": 1795640184.479747,
        "answer": 1795640184.48288,
        "end": 1795640185.483334,
        "duration": 1,
        "billsec": 1,
        "disposition": "ANSWERED",
        "amaflags": "DOCUMENTATION",
        "accountcode": "",
        "peeraccount": "",
        "userfield": "",
    }
).encode()


def test_a_cdr_over_ami_and_the_same_cdr_from_the_file_make_the_same_row() -> None:
    live, caught_up = cdr_from_ami(AMI), cdr_from_backstop(LINE)
    assert live.pop("source") == "ami"
    assert caught_up.pop("source") == "backstop"
    assert live == caught_up
    assert live["start"] == datetime.fromtimestamp(1795640184.479747, UTC)
    assert live["answer"] == datetime.fromtimestamp(1795640184.48288, UTC)
    assert (live["uniqueid"], live["sequence"], live["billsec"]) == ("1795640184.0", 0, 1)


def test_an_unanswered_leg_has_no_answer_time() -> None:
    row = cdr_from_ami({**AMI, "AnswerEpoch": "0.000000", "Disposition": "NO ANSWER"})
    assert row["answer"] is None
    assert row["disposition"] == "NO ANSWER"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"UniqueID": ""}, "no uniqueid"),
        ({"Sequence": "x"}, "sequence is not a whole number"),
        ({"StartEpoch": "yesterday"}, "start is not an epoch time"),
        ({"EndEpoch": "1795640100.0"}, "ends before it starts"),
        ({"Duration": "-1"}, "duration is negative"),
    ],
)
def test_a_cdr_that_cannot_be_stored_says_why(change: dict[str, str], reason: str) -> None:
    with pytest.raises(BadRecord, match=reason):
        cdr_from_ami({**AMI, **change})


@pytest.mark.parametrize(
    ("line", "reason"), [(b"{not json", "not JSON"), (b"[1, 2]", "not a JSON object")]
)
def test_a_file_line_that_is_not_a_record_says_why(line: bytes, reason: str) -> None:
    with pytest.raises(BadRecord, match=reason):
        cdr_from_backstop(line)


def test_long_fields_are_cut_not_refused() -> None:
    row = cdr_from_ami({**AMI, "LastData": "x" * 5000})
    assert len(row["lastdata"]) == 200


def test_a_channel_event_keeps_its_extra_json() -> None:
    line = json.dumps(
        {
            "eventtype": "HANGUP",
            "eventtime": 1795640163.378773,
            "uniqueid": "1795640163.0",
            "linkedid": "1795640163.0",
            "channame": "PJSIP/carrier-00000000",
            "num": "5551234",
            "name": "",
            "exten": "100",
            "context": "from-carrier",
            "appname": "",
            "appdata": "",
            "peer": "",
            "eventextra": '{"hangupcause":16,"hangupsource":"PJSIP/carrier-00000000"}',
        }
    ).encode()
    row = cel_from_backstop(line)
    assert row["event"] == "HANGUP"
    assert row["caller"] == "5551234"
    assert row["extra"] == {"hangupcause": 16, "hangupsource": "PJSIP/carrier-00000000"}
    assert row["at"] == datetime.fromtimestamp(1795640163.378773, UTC)
    with pytest.raises(BadRecord, match="no type"):
        cel_from_backstop(b'{"eventtime": 1795640163.3}')


# -- the file --------------------------------------------------------------------


def test_only_whole_lines_are_read_and_the_checkpoint_follows_them(tmp_path: Path) -> None:
    path = tmp_path / "cdr.json"
    assert read_lines(path, None) is None  # no file yet
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": ')  # Asterisk is writing the third
    chunk = read_lines(path, None)
    assert chunk is not None
    assert chunk.lines == [(0, b'{"a": 1}'), (9, b'{"b": 2}')]
    assert chunk.checkpoint == Checkpoint(os.stat(path).st_ino, 18)
    with path.open("ab") as handle:
        handle.write(b"3}\n")
    again = read_lines(path, chunk.checkpoint)
    assert again is not None
    assert again.lines == [(18, b'{"c": 3}')]
    assert not again.restarted
    assert read_lines(path, again.checkpoint).lines == []  # type: ignore[union-attr]


def test_a_replaced_or_cut_file_is_read_again_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "cdr.json"
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n')
    first = read_lines(path, None)
    assert first is not None
    path.write_bytes(b'{"c": 3}\n')  # cut shorter than the checkpoint
    cut = read_lines(path, first.checkpoint)
    assert cut is not None
    assert cut.restarted
    assert cut.lines == [(0, b'{"c": 3}')]
    path.unlink()
    path.write_bytes(b'{"d": 4}\n{"e": 5}\n')  # a new file (another inode), longer
    replaced = read_lines(path, Checkpoint(cut.checkpoint.inode + 1, 9))
    assert replaced is not None
    assert replaced.restarted
    assert len(replaced.lines) == 2


def test_a_big_backlog_is_read_in_pieces_and_a_giant_line_whole(tmp_path: Path) -> None:
    path = tmp_path / "cdr.json"
    path.write_bytes(b"x" * 50 + b"\n" + b"y" * 30 + b"\n")
    first = read_lines(path, None, max_bytes=60)
    assert first is not None
    assert [len(line) for _, line in first.lines] == [50]
    second = read_lines(path, first.checkpoint, max_bytes=60)
    assert second is not None
    assert [len(line) for _, line in second.lines] == [30]
    giant = read_lines(path, None, max_bytes=10)  # one line longer than the budget
    assert giant is not None
    assert [len(line) for _, line in giant.lines] == [50]

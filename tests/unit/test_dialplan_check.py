"""The dialplan checker: the repository's own dialplan passes, and each kind of
mistake ops make is found with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ari_app.domain.dialplan import Expected, check, matches, read

DIALPLAN = Path(__file__).resolve().parents[2] / "dialplan"
EXPECTED = Expected(
    contexts={"ari-app-agents": "the agents' phones", "ari-app-transfer": "IVR transfers"},
    numbers={"100": "flow demo"},
)
APPS = ("Answer", "Playback", "Hangup", "NoOp", "Stasis", "GotoIf", "Goto", "Gosub", "Dial",
        "VoiceMail", "Log", "Wait", "Busy")  # fmt: skip


def _ours() -> dict[str, str]:
    return {
        path.name: path.read_text().replace("{{ application }}", "ari-app")
        for path in DIALPLAN.glob("*.conf")
    }


def test_the_repository_s_dialplan_has_no_problem() -> None:
    plan = read(_ours())
    assert check(plan, EXPECTED, APPS) == []
    assert {"from-carrier", "ari-app-services", "ari-app-agents"} <= set(plan.contexts)
    services = plan.contexts["ari-app-services"].extensions()["_1XX"]
    assert [step.priority for step in services] == [1, 2, 3, 4]


BASE = """[general]
static = yes
[from-carrier]
include => services
[services]
exten => _1XX,1,Answer()
 same => n(again),Playback(hello)
 same => n,GotoIf($[1 = 1]?again:done)
 same => n(done),Hangup()
[ari-app-agents]
exten => *11,1,Goto(services,100,1)
[ari-app-transfer]
exten => _X.,1,Dial(PJSIP/${EXTEN}@carrier)
"""


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("Playback(hello)", "Playback(hello"), "extensions.conf:7: not an application call"),
        (("Answer()", "Answr()"), "extensions.conf:6: application Answr is not in"),
        (("_1XX,1,", "_1XX,2,"), "extensions.conf:6: _1XX starts at priority 2, not 1"),
        (("n(done)", "3(done)"), "extensions.conf:9: _1XX priority 3 is given twice (line 8)"),
        (("include => services", "include => service"), "extensions.conf:4: includes 'service'"),
        (("?again:done", "?again:dnoe"), "extensions.conf:8: GotoIf to label 'dnoe'"),
        (("Goto(services,100,1)", "Goto(servics,100,1)"), "to context 'servics', which is not"),
        (("Goto(services,100,1)", "Goto(services,200,1)"), "Goto to services,200, which is not"),
        (("[ari-app-transfer]", "[ari-app-transfers]"), "context 'ari-app-transfer' is missing"),
        (("_1XX", "_2XX"), "extensions.conf:3: number 100 (flow demo) is not reached"),
        (("[general]\n", "exten => 1,1,NoOp()\n[general]\n"), "a line before any [context]"),
        ((" same => n(again)", "same => (again)"), "extensions.conf:7: priority '(again)'"),
        (("[from-carrier]\n", "[from-carrier]\nsame => n,NoOp()\n"), "'same' with no extension"),
        (("exten => *11,1,", "exten => *11,"), "extensions.conf:11: priority 'Goto(services'"),
    ],
)
def test_each_kind_of_mistake_is_found_where_it_is(change: tuple[str, str], problem: str) -> None:
    assert check(read({"extensions.conf": BASE}), EXPECTED, APPS) == []
    text = BASE.replace(*change, 1)
    assert text != BASE
    found = [str(p) for p in check(read({"extensions.conf": text}), EXPECTED, APPS)]
    assert any(problem in line for line in found), found


def test_includes_are_followed_and_a_missing_or_circular_one_is_named() -> None:
    files = {"extensions.conf": BASE + '#include "more.conf"\n', "more.conf": "[extra]\n"}
    assert "extra" in read(files).contexts
    missing = read({"extensions.conf": BASE + '#include "gone.conf"\n'})
    assert [str(p) for p in missing.problems] == ["extensions.conf:14: gone.conf: no such file"]
    looped = read({"extensions.conf": '#include "a.conf"\n', "a.conf": '#include "a.conf"\n'})
    assert [str(p) for p in looped.problems] == ["a.conf:1: a.conf includes itself"]


@pytest.mark.parametrize(
    ("pattern", "number", "taken"),
    [
        ("100", "100", True),
        ("_1XX", "199", True),
        ("_1XX", "1990", False),
        ("_NXX", "155", False),
        ("_Z!", "5", True),
        ("_X.", "5", False),  # `.` wants one more at least
        ("_X.", "55", True),
        ("_[2-4]X", "35", True),
        ("_[2-4]X", "55", False),
    ],
)
def test_extension_patterns_take_the_numbers_asterisk_gives_them(
    pattern: str, number: str, taken: bool
) -> None:
    assert matches(pattern, number) is taken


@given(st.text(alphabet='[]();,=>_XNZ.!#"\\ \nabcexntsmi1', max_size=200))
def test_any_text_is_read_into_contexts_and_problems_never_an_exception(text: str) -> None:
    plan = read({"extensions.conf": text})
    check(plan, EXPECTED, APPS)

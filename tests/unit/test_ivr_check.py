"""`ari-app ivr check`: each broken flow gives its expected problem at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_app.adapters.flow_files import parse_text
from ari_app.cli import main
from ari_app.services.flows import check_file

FLOWS = Path(__file__).parent / "flows"
DEMO = Path(__file__).resolve().parents[2] / "dialplan" / "flows" / "demo.yaml"
BROKEN = sorted((FLOWS / "broken").glob("*.yaml"))


def _expected(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), path
    return first.removeprefix("# expect: ")


@pytest.mark.parametrize("path", BROKEN, ids=[path.stem for path in BROKEN])
def test_a_broken_flow_is_refused_with_its_line_and_reason(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow, problems = check_file(path)
    assert flow is None
    expected = f"{path}:{_expected(path)}"
    assert any(problem.startswith(expected) for problem in problems), problems
    assert main(["ivr", "check", "--offline", str(path)]) == 1
    assert expected in capsys.readouterr().out


def test_there_is_a_broken_flow_for_every_kind_of_mistake_the_issue_names() -> None:
    names = {path.stem for path in BROKEN}
    assert {
        "unknown_kind",
        "dangling_target",
        "unreachable",
        "loop_without_input",
        "duplicate_digit",
        "bad_schedule_span",
        "bad_timezone",
    } <= names


def test_the_demo_flow_is_fine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ivr", "check", "--offline", str(DEMO)]) == 0
    assert "flow 'demo' version 1 is fine" in capsys.readouterr().out


def test_every_problem_of_a_file_is_reported_not_only_the_first() -> None:
    text = """flow: t
version: 1
start: a
nodes:
  a:
    kind: menu
    prompts: [sound:x]
    options: {"1": nowhere, "2": also_nowhere}
  b:
    kind: hangup
"""
    document = parse_text(text, "f.yaml")
    from ari_app.domain.ivr.check import load_flow

    flow, problems = load_flow(document.data)
    messages = sorted(str(document.locate(problem)) for problem in problems)
    assert flow is None
    assert messages == [
        "f.yaml:8: 'options.1' leads to 'nowhere', which does not exist",
        "f.yaml:8: 'options.2' leads to 'also_nowhere', which does not exist",
        "f.yaml:9: node 'b' cannot be reached from 'a'",
    ]


def test_missing_prompts_are_found_when_the_sounds_are_known() -> None:
    from ari_app.domain.ivr.check import check_flow
    from ari_app.domain.ivr.flow import parse_flow

    flow, _ = parse_flow(
        {
            "flow": "t",
            "version": 1,
            "start": "p",
            "nodes": {
                "p": {
                    "kind": "play",
                    "prompts": ["sound:hello-world", "sound:no-such", "welcome"],
                    "next": "french",
                },
                "french": {"kind": "language", "language": "fr", "next": "h"},
                "h": {"kind": "hangup", "prompts": ["sound:hello-world"]},
            },
        }
    )
    assert flow is not None
    english = {"hello-world", "ari-app/welcome"}
    problems = check_flow(
        flow, sound_exists=lambda name, language: language == "en" and name in english
    )
    # own prompts are looked up in their folder; after the switch, French is what counts
    assert [problem.message for problem in problems] == [
        "prompt 'sound:hello-world' is not among Asterisk's sounds in 'fr'",
        "prompt 'sound:no-such' is not among Asterisk's sounds in 'en'",
    ]


def test_a_file_that_cannot_be_read_is_one_clear_problem(tmp_path: Path) -> None:
    flow, problems = check_file(tmp_path / "absent.yaml")
    assert flow is None
    assert len(problems) == 1
    assert "cannot read" in problems[0]


def test_an_empty_value_reads_as_nothing_and_a_list_for_a_key_is_a_problem() -> None:
    """Both once failed the parse with an exception (a flow's `key:` with no value, too)."""
    document = parse_text("a:\n  b:\n  c: yes\n? [1, 2]\n: 3\n", "f.yaml")
    assert document.data == {"a": {"b": None, "c": True}}
    assert [str(problem) for problem in document.problems] == [
        "f.yaml:4: a key is a name, not a list or map"
    ]

"""ARI messages into call events (the edge parser), from recorded message shapes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ari_app.domain.events import CallArrived, ChannelAnswered, ChannelGone, PromptFinished
from ari_app.services.stasis import (
    USED_EVENTS,
    ApplicationReplaced,
    HoldChanged,
    parse,
    timestamp,
)

CHANNEL = {
    "id": "1795565598.5",
    "name": "PJSIP/carrier-00000004",
    "state": "Ring",
    "caller": {"name": "", "number": "5551234"},
    "dialplan": {"context": "from-carrier", "exten": "100", "priority": 2},
    "creationtime": "2026-11-25T00:13:18.379+0000",
}


def test_stasis_start_is_an_arriving_call_with_caller_number_and_time() -> None:
    event = parse(
        {
            "type": "StasisStart",
            "application": "ari-app",
            "args": [],
            "timestamp": "2026-11-25T00:13:18.380+0000",
            "channel": CHANNEL,
        }
    )
    assert event == CallArrived(
        "1795565598.5", "5551234", "100", datetime(2026, 11, 25, 0, 13, 18, 379000, tzinfo=UTC)
    )


def test_a_channel_going_up_is_an_answer_and_other_states_are_not() -> None:
    assert parse({"type": "ChannelStateChange", "channel": {**CHANNEL, "state": "Up"}}) == (
        ChannelAnswered("1795565598.5")
    )
    assert parse({"type": "ChannelStateChange", "channel": {**CHANNEL, "state": "Ringing"}}) is None


def test_playback_finished_names_the_channel_it_played_to() -> None:
    message = {
        "type": "PlaybackFinished",
        "playback": {
            "id": "1795565598.5-welcome",
            "media_uri": "sound:hello-world",
            "target_uri": "channel:1795565598.5",
            "language": "en",
            "state": "done",
        },
    }
    assert parse(message) == PromptFinished("1795565598.5", "1795565598.5-welcome")


def test_a_playback_to_a_bridge_is_not_a_call_event() -> None:
    message = {"type": "PlaybackFinished", "playback": {"id": "p", "target_uri": "bridge:b1"}}
    assert parse(message) is None


def test_channel_destroyed_carries_the_q850_cause() -> None:
    message = {
        "type": "ChannelDestroyed",
        "cause": 16,
        "cause_txt": "Normal Clearing",
        "channel": CHANNEL,
    }
    assert parse(message) == ChannelGone("1795565598.5", 16, "Normal Clearing")


def test_application_replaced_is_raised_not_ignored() -> None:
    with pytest.raises(ApplicationReplaced):
        parse({"type": "ApplicationReplaced", "application": "ari-app"})


def test_messages_the_call_logic_does_not_use_are_none() -> None:
    assert parse({"type": "ChannelVarset", "variable": "X", "value": "1"}) is None


def test_timestamps_accept_the_ari_offset_form() -> None:
    assert timestamp("2026-11-25T00:13:18.379+0000") == datetime(
        2026, 11, 25, 0, 13, 18, 379000, tzinfo=UTC
    )
    assert timestamp(None) is None


def test_a_feature_code_from_an_agent_phone_is_not_a_call() -> None:
    from ari_app.domain.agents import FeatureDialed, agent_of

    message = {
        "type": "StasisStart",
        "args": ["agent-feature", "pause", "agent-anna", "2"],
        "channel": {**CHANNEL, "name": "PJSIP/agent-anna-00000007"},
    }
    assert parse(message) == FeatureDialed("1795565598.5", "pause", "agent-anna", "2")
    assert agent_of("agent-anna") == "anna"
    assert agent_of("carrier") is None
    assert agent_of("agent-Bad!") is None


def test_a_phone_holding_or_resuming_its_far_side_is_a_hold_change() -> None:
    held = parse({"type": "ChannelHold", "channel": CHANNEL, "musicclass": ""})
    resumed = parse({"type": "ChannelUnhold", "channel": CHANNEL})
    assert (held, resumed) == (HoldChanged(CHANNEL["id"], True), HoldChanged(CHANNEL["id"], False))


def test_every_event_type_the_parser_reads_is_one_asterisk_is_asked_to_send() -> None:
    # each type the parser turns into an event, with the smallest message that does it
    samples = {
        "StasisStart": {"channel": CHANNEL},
        "ChannelStateChange": {"channel": {**CHANNEL, "state": "Up"}},
        "ChannelDtmfReceived": {"channel": CHANNEL, "digit": "1"},
        "ChannelHangupRequest": {"channel": CHANNEL},
        "ChannelDestroyed": {"channel": CHANNEL, "cause": 16},
        "ChannelHold": {"channel": CHANNEL},
        "ChannelUnhold": {"channel": CHANNEL},
        "PlaybackFinished": {"playback": {"id": "p", "target_uri": "channel:1795565598.5"}},
        "RecordingFinished": {"recording": {"name": "r"}},
        "RecordingFailed": {"recording": {"name": "r"}},
        "EndpointStateChange": {"endpoint": {"resource": "agent-anna", "state": "online"}},
    }
    for kind, body in samples.items():
        assert parse({"type": kind, **body}) is not None, kind
    assert set(samples) | {"ApplicationReplaced"} == set(USED_EVENTS)
    # and what is left out is what it never reads
    for kind in ("ChannelVarset", "ChannelDialplan", "ChannelEnteredBridge", "PlaybackStarted"):
        assert parse({"type": kind, "channel": CHANNEL}) is None

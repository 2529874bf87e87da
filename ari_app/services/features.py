"""Feature codes dialled from the phones: an agent's log in, log out, pause, unpause and
end of wrap-up; a supervisor's listen, whisper and barge on an agent (*31, *32, *33).

The dialplan (`ari-app-agents`) hands the code to Stasis with the endpoint
that dialled it. An agent's state changes here, then the channel goes back
to the dialplan (`ari-app-agent-result`), which plays the confirmation or the
error tone and hangs up. A supervisor's code that is allowed keeps the channel:
it becomes the supervisor's side of the monitor session; one that is not plays
the error tone.
"""

from __future__ import annotations

import structlog

from ari_app.adapters.ari import AriError, AriRest, AriUnreachable
from ari_app.domain import agents as agent_logic
from ari_app.domain.agents import FeatureDialed
from ari_app.domain.monitor import Mode, MonitorRefused, supervisor_of
from ari_app.services.agents import AgentDirectory, AgentNotFound
from ari_app.services.monitor import CallNotMonitored, MonitorBusy, MonitorService
from ari_app.services.supervisors import SupervisorNotFound

log = structlog.get_logger(__name__)
RESULT_CONTEXT = "ari-app-agent-result"
RESULT_VARIABLE = "ARI_APP_FEATURE_RESULT"


class FeatureCodes:
    def __init__(self, ari: AriRest, agents: AgentDirectory, monitor: MonitorService) -> None:
        self.ari, self.agents, self.monitor = ari, agents, monitor

    async def handle(self, event: FeatureDialed) -> None:
        if event.feature in {mode.value for mode in Mode}:
            if await self._monitor(event):
                return
            await self._say(event, "refused", "monitor")
            return
        agent_id = agent_logic.agent_of(event.endpoint)
        result = "refused"
        try:
            if agent_id is None:
                raise agent_logic.AgentStateError(f"'{event.endpoint}' is not an agent's phone")
            change = agent_logic.feature_event(event.feature, event.argument)
            await self.agents.change_state(agent_id, change, "phone")
            result = "ok"
        except (agent_logic.AgentStateError, AgentNotFound) as exc:
            log.warning(
                "feature_refused", endpoint=event.endpoint, feature=event.feature, why=str(exc)
            )
        extension = event.feature if event.feature in agent_logic.FEATURES else "unknown"
        await self._say(event, result, extension)

    async def _monitor(self, event: FeatureDialed) -> bool:
        """A supervisor asks to monitor an agent's conversation; True if it started."""
        supervisor_id = supervisor_of(event.endpoint)
        conversation = self.monitor.conversations.conversation_of(event.argument)
        why = ""
        if supervisor_id is None:
            why = f"'{event.endpoint}' is not a supervisor's phone"
        elif conversation is None:
            why = f"agent '{event.argument}' is not in a conversation"
        else:
            try:
                await self.monitor.start(
                    conversation.call_id, Mode(event.feature), supervisor_id, "supervisor",
                    f"phone {event.endpoint}", channel=event.channel_id,
                )  # fmt: skip
                return True
            except (CallNotMonitored, SupervisorNotFound, MonitorRefused, MonitorBusy) as exc:
                why = str(exc)
            except (AriError, AriUnreachable) as exc:
                why = f"Asterisk: {exc}"
        log.warning("feature_refused", endpoint=event.endpoint, feature=event.feature, why=why)
        return False

    async def _say(self, event: FeatureDialed, result: str, extension: str) -> None:
        try:
            await self.ari.set_channel_var(event.channel_id, RESULT_VARIABLE, result)
            await self.ari.continue_in_dialplan(event.channel_id, RESULT_CONTEXT, extension)
        except (AriError, AriUnreachable) as exc:  # the agent hung up already: nothing to say
            log.info("feature_result_unsaid", channel_id=event.channel_id, why=str(exc))

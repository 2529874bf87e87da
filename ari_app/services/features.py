"""Feature codes dialled from agents' phones: log in, log out, pause, unpause, end wrap-up.

The dialplan (`ari-app-agents`) hands the code to Stasis with the endpoint
that dialled it; the agent's state changes here, then the channel goes back
to the dialplan (`ari-app-agent-result`), which plays the confirmation or the
error tone and hangs up.
"""

from __future__ import annotations

import structlog

from ari_app.adapters.ari import AriError, AriRest, AriUnreachable
from ari_app.domain import agents as agent_logic
from ari_app.domain.agents import FeatureDialed
from ari_app.services.agents import AgentDirectory, AgentNotFound

log = structlog.get_logger(__name__)
RESULT_CONTEXT = "ari-app-agent-result"
RESULT_VARIABLE = "ARI_APP_FEATURE_RESULT"


class FeatureCodes:
    def __init__(self, ari: AriRest, agents: AgentDirectory) -> None:
        self.ari, self.agents = ari, agents

    async def handle(self, event: FeatureDialed) -> None:
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
        try:
            await self.ari.set_channel_var(event.channel_id, RESULT_VARIABLE, result)
            await self.ari.continue_in_dialplan(event.channel_id, RESULT_CONTEXT, extension)
        except (AriError, AriUnreachable) as exc:  # the agent hung up already: nothing to say
            log.info("feature_result_unsaid", channel_id=event.channel_id, why=str(exc))

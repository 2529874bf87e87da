"""The center's resources decide what the next real call gets: a service number put
through the API sends its callers to a flow; a flow version uploaded waits, activated
answers the next caller, rolled back gives the version before; a broken document
applied changes nothing a caller hears."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ari_app.adapters.asterisk_local import LocalAsterisk
from tests.integration.conftest import FLOWS
from tests.integration.telephony import (
    REPO,
    Observer,
    Service,
    ari_observer,
    place_call,
    start_service,
)

HELLO_V2 = (FLOWS / "hello.yaml").read_text().replace("version: 1", "version: 2")
HELLO_V2 = HELLO_V2.replace("sound:hello-world", "sound:demo-thanks")  # 5.5 s, not 1 s


async def _next_call(
    service: Service, observer: Observer, port: int, number: str
) -> dict[str, Any]:
    """A real call from the carrier to the number, to its end; the service's row of it."""
    seen = len(observer.of_type("ChannelCreated"))
    result = await place_call(port, number=number, timeout=30)
    assert result.returncode == 0, result.output
    created = observer.of_type("ChannelCreated")
    assert len(created) > seen
    row = await service.call(created[seen]["channel"]["id"], timeout=20)
    row["heard"] = result.ear.audio_seconds()
    return row


async def test_numbers_and_flow_versions_decide_what_the_next_real_call_gets(
    local_asterisk: LocalAsterisk, service_env: dict[str, str], tmp_path: Path
) -> None:
    port = local_asterisk.settings.sip_port
    folder = tmp_path / "flows"
    shutil.copytree(FLOWS, folder)
    queues = tmp_path / "queues.yaml"
    shutil.copyfile(REPO / "dialplan" / "queues.yaml", queues)
    env = {**service_env, "ARI_APP_FLOWS_DIR": str(folder), "ARI_APP_QUEUES_FILE": str(queues)}
    service = await start_service(env)
    try:
        async with ari_observer(service.env) as observer, service.client() as admin:
            # 150 reaches the service (the dialplan's 1XX), but no flow answers it yet
            row = await _next_call(service, observer, port, "150")
            assert row["flow"] is None

            put = await admin.put("/api/v1/numbers/150", json={"flow": "hello", "label": "new"})
            assert put.status_code == 201, put.text
            row = await _next_call(service, observer, port, "150")
            assert (row["flow"], row["flow_version"]) == ("hello", 1)

            url = "/api/v1/ivr/flows/hello"
            stored = await admin.post(
                f"{url}/versions", content=HELLO_V2, headers={"Content-Type": "application/yaml"}
            )
            assert stored.status_code == 201, stored.text
            row = await _next_call(service, observer, port, "100")
            assert (row["flow_version"], row["heard"] < 2.5) == (1, True)  # stored, not in force

            activated = await admin.post(f"{url}/versions/2/activate")
            assert activated.status_code == 200, activated.text
            row = await _next_call(service, observer, port, "100")
            assert row["flow_version"] == 2
            assert row["heard"] > 3, row  # the new, long prompt
            assert (await _next_call(service, observer, port, "150"))["flow_version"] == 2

            broken = {"flows": {"hello": {"flow": "hello", "version": 3, "start": "gone",
                                          "nodes": {}}}}  # fmt: skip
            refused = await admin.post("/api/v1/config/apply", json=broken)
            assert refused.status_code == 422, refused.text
            assert (await _next_call(service, observer, port, "100"))["flow_version"] == 2

            back = await admin.post(f"{url}/rollback")
            assert back.status_code == 200, back.text
            row = await _next_call(service, observer, port, "100")
            assert (row["flow_version"], row["heard"] < 2.5) == (1, True)
            assert (folder / "hello.yaml").read_text() == (FLOWS / "hello.yaml").read_text()

            gone = await admin.delete("/api/v1/numbers/150")
            assert gone.status_code == 204
            assert (await _next_call(service, observer, port, "150"))["flow"] is None
    finally:
        await service.stop()

"""The app factory: checks the settings against the real parts, builds it all, owns the tasks."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import signal
import sys
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
import uvicorn
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ari_app import logs
from ari_app.adapters.agent_store import AgentStore, CallbackStore, RoutingStore
from ari_app.adapters.ami import AmiClient, AmiLoginFailed
from ari_app.adapters.ari import AriError, AriEvents, AriRest, AriUnreachable
from ari_app.adapters.ari_socket import RestOverSocket
from ari_app.adapters.backend import Backends
from ari_app.adapters.cdr_store import CdrStore
from ari_app.adapters.center_store import CenterStore
from ari_app.adapters.db import CallStore, TokenStore, Writer, engine_for, migrate, ping
from ari_app.adapters.dialplan_deploy import DialplanInstaller
from ari_app.adapters.interaction_store import InteractionStore
from ari_app.adapters.kpi_rollup import gathering_unmarks
from ari_app.adapters.kpi_store import KpiStore
from ari_app.adapters.monitor_store import MonitorStore, SupervisorStore
from ari_app.adapters.mqtt import MqttPublisher
from ari_app.adapters.recording_store import RecordingStore
from ari_app.adapters.user_store import AuditStore, UserStore
from ari_app.api.app import create_api
from ari_app.api.deps import ApiContext
from ari_app.domain.acd import Acd
from ari_app.domain.agents import FeatureDialed
from ari_app.domain.call import Config
from ari_app.domain.events import AgentHungUp, ChannelGone, DigitReceived, PromptFinished
from ari_app.domain.ivr.sounds import SoundCatalog
from ari_app.domain.kpi import Targets
from ari_app.domain.routing.config import QueueConfig
from ari_app.services import stasis
from ari_app.services.acd import AcdService
from ari_app.services.agents import AgentDirectory, profile_of, status_of
from ari_app.services.calls import CallService
from ari_app.services.cdr import CdrCapture
from ari_app.services.center import CenterDesk
from ari_app.services.dialplan import DialplanDesk
from ari_app.services.features import FeatureCodes
from ari_app.services.flow_versions import FlowVersions
from ari_app.services.flows import FlowRegistry
from ari_app.services.interactions import InteractionLog
from ari_app.services.kpis import KpiKeeper, KpiReports, targets_of
from ari_app.services.lease import ApplicationHeld, Lease
from ari_app.services.live import LiveService
from ari_app.services.loop_lag import LoopLag
from ari_app.services.monitor import MonitorService
from ari_app.services.phones import AsteriskRefused
from ari_app.services.queues import QueueBook, QueueRefused, read_queues
from ari_app.services.recordings import RecordingService
from ari_app.services.supervisors import SupervisorDirectory
from ari_app.services.tokens import first_admin_token
from ari_app.services.users import UserDirectory
from ari_app.settings import Settings

log = structlog.get_logger(__name__)


class StartupError(Exception):
    """The service cannot start; `setting` names the setting to fix, when one is to blame."""

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(f"{setting}: {message}" if setting else message)
        self.setting = setting


class _Stop(Exception):
    """Raised inside the task group to end it on a signal."""


class _Server(uvicorn.Server):
    """uvicorn in our loop; signals are ours, not uvicorn's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Parts:
    settings: Settings
    ari: AriRest
    events: AriEvents
    ami: AmiClient
    calls: CallService
    flows: FlowRegistry
    queues: QueueBook
    agents: AgentDirectory
    features: FeatureCodes
    acd: AcdService
    monitor: MonitorService
    supervisors: SupervisorDirectory
    cdr: CdrCapture
    live: LiveService
    kpi_keeper: KpiKeeper
    backends: Backends
    writer: Writer
    lease: Lease
    mqtt: MqttPublisher | None
    server: _Server
    engine: AsyncEngine
    loop_lag: LoopLag = field(default_factory=LoopLag)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


async def _check_ari(settings: Settings, ari: AriRest) -> None:
    try:
        await ari.asterisk_info()
    except AriUnreachable as exc:
        raise StartupError(
            f"cannot reach ARI at {settings.ari_url} ({exc.__cause__!r})", "ARI_APP_ARI_URL"
        ) from exc
    except AriError as exc:
        if exc.status == 401:
            raise StartupError(
                f"ARI refused user {settings.ari_user!r} (401 Unauthorized)", "ARI_APP_ARI_PASSWORD"
            ) from exc
        raise StartupError(f"ARI answered {exc}", "ARI_APP_ARI_URL") from exc


async def _check_ami(settings: Settings, ami: AmiClient) -> None:
    try:
        await ami.open()
    except AmiLoginFailed as exc:
        raise StartupError(
            f"AMI refused user {settings.ami_user!r} ({exc})", "ARI_APP_AMI_PASSWORD"
        ) from exc
    except (OSError, TimeoutError) as exc:
        raise StartupError(
            f"cannot reach AMI at {settings.ami_host}:{settings.ami_port} ({exc!r})",
            "ARI_APP_AMI_HOST",
        ) from exc
    await ami.aclose()


async def _open_database(settings: Settings) -> Any:
    try:
        await asyncio.to_thread(migrate, settings.database_url)
        engine = engine_for(settings.database_url)
    except (SQLAlchemyError, OSError) as exc:
        reason = str(exc).splitlines()[0]
        raise StartupError(f"cannot open the database ({reason})", "ARI_APP_DATABASE_URL") from exc
    return engine


async def _sounds(ari: AriRest) -> SoundCatalog:
    return SoundCatalog.from_ari(await ari.sounds())


async def _acd(
    queues: dict[str, QueueConfig],
    store: AgentStore,
    ari: AriRest,
    settings: Settings,
    config: Config,
) -> AcdService:
    """The ACD with the agents as the database has them (phones unreachable until asked)."""
    center = Acd(dict(queues))
    states = await store.states()
    for record in await store.all():
        center.profiles[record.id] = profile_of(record)
        center.statuses[record.id] = status_of(record.id, states.get(record.id))
    return AcdService(
        center,
        ari,
        settings.ari_application,
        store,
        RoutingStore(store.engine),
        CallbackStore(store.engine),
        config=config,
    )


async def build(settings: Settings) -> Parts:
    """Check every part the settings name, then build the service. Raises StartupError."""
    engine = await _open_database(settings)
    password = settings.ari_password.get_secret_value()
    ari = AriRest(settings.ari_url, settings.ari_user, password)
    await _check_ari(settings, ari)
    # a call's REST requests ride on the event websocket once it is connected, where
    # Asterisk takes them; over HTTP otherwise
    rest_on_socket = RestOverSocket() if await ari.takes_requests_on_socket() else None
    ari.socket = rest_on_socket
    log.info("ari_requests", on_socket=rest_on_socket is not None)
    ami = AmiClient(
        settings.ami_host,
        settings.ami_port,
        settings.ami_user,
        settings.ami_password.get_secret_value(),
        ping_seconds=settings.ami_ping_seconds,
        max_backoff=settings.reconnect_max_seconds,
        # CDRs are the only events read: every channel's events besides would be formatted,
        # sent and parsed for nothing
        events="cdr",
    )
    await _check_ami(settings, ami)
    lease = Lease(ari, settings.ari_application)
    try:
        await lease.acquire()
    except ApplicationHeld as exc:
        raise StartupError(str(exc), "ARI_APP_ARI_APPLICATION") from exc

    tokens, users = TokenStore(engine), UserStore(engine)
    token = await first_admin_token(tokens, users)
    if token is not None:
        print(
            f"ari-app: first admin token (shown once, keep it): {token}",
            file=sys.stderr,
            flush=True,
        )

    mqtt = MqttPublisher(settings.mqtt_url) if settings.mqtt_url else None
    topic = f"{settings.mqtt_topic_prefix}/{settings.center}/calls"

    def publish(call_id: str, payload: dict[str, Any]) -> None:
        if mqtt is not None:
            mqtt.publish(f"{topic}/{call_id}/events", payload)

    parts_tasks: set[asyncio.Task[Any]] = set()
    writer = Writer(
        engine, max_backoff=settings.reconnect_max_seconds, gather=0.1, around=gathering_unmarks
    )
    cdr_store = CdrStore(engine)
    cdr = CdrCapture(
        cdr_store,
        writer,
        {"cdr": settings.cdr_backstop, "cel": settings.cel_backstop},
        poll_seconds=settings.backstop_poll_seconds,
    )
    ami.on_event("Cdr", cdr.on_ami_cdr)
    interaction_store = InteractionStore(engine)
    interactions = InteractionLog(interaction_store, writer)
    await interactions.load()
    center_topic = f"{settings.mqtt_topic_prefix}/{settings.center}"

    def publish_live(topic: str, body: dict[str, Any] | None, retain: bool) -> None:
        if mqtt is not None:
            mqtt.publish(f"{center_topic}/{topic}", body, retain=retain)

    store = CallStore(engine)
    events = AriEvents(
        settings.ari_url,
        settings.ari_application,
        settings.ari_user,
        password,
        max_backoff=settings.reconnect_max_seconds,
        rest=rest_on_socket,
    )

    loop_lag = LoopLag()

    async def health() -> tuple[bool, dict[str, Any]]:
        database = await ping(engine)
        report = {
            "ari": {"connected": events.connected.is_set(), "reconnects": events.reconnects},
            "ami": {"connected": ami.connected.is_set(), "reconnects": ami.reconnects},
            "database": {
                "reachable": database,
                "backlog": writer.backlog,
                "coalesced": writer.coalesced,
            },
            "cdr": dataclasses.asdict(cdr.counts),
            "mqtt": {
                "configured": mqtt is not None,
                "connected": mqtt is not None and mqtt.connected.is_set(),
                "dropped": mqtt.dropped if mqtt else 0,
                "replaced": mqtt.replaced if mqtt else 0,
            },
            "event_loop": loop_lag.report(),
        }
        return events.connected.is_set() and database, report

    queues, problems = read_queues(settings.queues_file)
    if queues is None:
        raise StartupError(
            f"the queues file is refused: {'; '.join(problems)}", "ARI_APP_QUEUES_FILE"
        )
    if not settings.flows_dir.is_dir():
        raise StartupError(f"{settings.flows_dir} is not a folder", "ARI_APP_FLOWS_DIR")
    flows = FlowRegistry(settings.flows_dir, lambda: _sounds(ari))
    await flows.reload()  # a flow that fails its check is logged and left out; the others serve
    backends = Backends()
    agent_store = AgentStore(engine)
    agents = AgentDirectory(agent_store, ari)
    acd = await _acd(queues, agent_store, ari, settings, Config(queues=frozenset(queues)))
    live = LiveService(acd.acd, publish_live, short_abandon=settings.short_abandon_seconds)
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    live.load(await interaction_store.between(midnight, now))
    agents.keeper = acd
    supervisors = SupervisorDirectory(SupervisorStore(engine), tokens, ari, users)
    monitor = MonitorService(
        ari,
        settings.ari_application,
        MonitorStore(engine),
        supervisors,
        acd,
        lambda coroutine: _spawn(parts_tasks, coroutine),
        tone=settings.monitor_tone,
    )
    acd.recorder = RecordingService(
        ari,
        RecordingStore(engine),
        settings.recordings_dir,
        spawn=lambda coroutine: _spawn(parts_tasks, coroutine),
    )

    def apply_queues(new: dict[str, QueueConfig]) -> None:
        acd.set_queues(new)
        calls.config = acd.config  # the IVR hands callers only to queues that exist

    in_use = (acd.queue_in_use, flows.queue_in_use)
    queue_book = QueueBook(settings.queues_file, queues, apply_queues, in_use)
    kpi_sums = KpiStore(engine)

    def targets() -> Targets:
        return targets_of(acd.acd.queues, settings)

    dialplan = DialplanDesk(
        settings.dialplan_dir,
        settings.ari_application,
        settings.flows_dir,
        DialplanInstaller(ami, settings.asterisk_config_dir)
        if settings.asterisk_config_dir
        else None,
        assigned=lambda: flows.assigned,
    )
    center = CenterDesk(
        CenterStore(engine),
        agents,
        flows,
        queue_book,
        queue_busy=acd.queue_in_use,
        reached=dialplan.reaches,
    )
    await center.load_numbers()
    api = create_api(
        ApiContext(
            calls=store,
            users=UserDirectory(users, tokens, agent_store, supervisors),
            audit=AuditStore(engine),
            health=health,
            flows=flows,
            agents=agents,
            routing=RoutingStore(engine),
            acd=acd,
            queues=queue_book,
            supervisors=supervisors,
            monitor=monitor,
            cdrs=cdr_store,
            interactions=interactions,
            kpis=KpiReports(kpi_sums, targets),
            live=live,
            center=center,
            versions=FlowVersions(center.store, center),
            dialplan=dialplan,
        )
    )
    server = _Server(
        uvicorn.Config(
            api,
            host=settings.api_host,
            port=settings.api_port,
            log_config=None,
            lifespan="off",
            access_log=False,
            # a request still running when the service stops gets this long, then is cut
            timeout_graceful_shutdown=5,
        )
    )
    calls = CallService(
        ari=ari,
        application=settings.ari_application,
        store=store,
        writer=writer,
        flows=flows,
        backends=backends,
        config=acd.config,
        spawn=lambda coroutine: _spawn(parts_tasks, coroutine),
        publish=publish,
    )
    calls.enter_queue = acd.enter
    acd.agent_hung_up = lambda call_id: calls.handle(AgentHungUp(call_id))
    calls.saved = interactions.call_saved
    acd.interactions = interactions
    acd.writer = writer
    interactions.live = live
    return Parts(
        settings,
        ari,
        events,
        ami,
        calls,
        flows,
        queue_book,
        agents,
        FeatureCodes(ari, agents, monitor),
        acd,
        monitor,
        supervisors,
        cdr,
        live,
        KpiKeeper(kpi_sums, writer, targets),
        backends,
        writer,
        lease,
        mqtt,
        server,
        engine,
        loop_lag=loop_lag,
        tasks=parts_tasks,
    )


def _spawn(
    tasks: set[asyncio.Task[Any]], coroutine: Coroutine[Any, Any, None]
) -> asyncio.Task[None]:
    """Start a per-call task, keeping a reference until it is done."""
    task = asyncio.get_running_loop().create_task(coroutine)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task


async def consume_events(parts: Parts) -> None:
    """Hand every ARI event to the call service; rebuild live calls on every connect."""

    async def on_connected() -> None:
        await parts.ari.filter_events(parts.settings.ari_application, stasis.USED_EVENTS)
        # the phones first: Asterisk may have restarted with an empty picture
        try:
            await parts.agents.provision_all()
            await parts.supervisors.provision_all()
        except AsteriskRefused as exc:
            # calls are still served; the phones cannot register until this is mended
            log.error("agents_not_provisioned", reason=str(exc))
        await parts.acd.phones_reachable()
        parts.calls.monitor_channels = await parts.monitor.channels()
        await parts.calls.reconcile()
        await parts.acd.resume()
        await parts.monitor.resume()
        parts.acd.settle_mixing()
        if parts.acd.recorder is not None:
            await parts.acd.recorder.resume()

    async for message in parts.events.stream(on_connected):
        try:
            event = stasis.parse(message)
            if isinstance(event, FeatureDialed):
                _spawn(parts.tasks, parts.features.handle(event))
            elif isinstance(event, stasis.AgentLegAnswered):
                parts.acd.leg_answered(event.channel_id, event.call_id, event.agent_id)
            elif isinstance(event, stasis.CustomerAnswered):
                parts.acd.customer_answered(event.channel_id, event.call_id)
            elif isinstance(event, stasis.RecordingEnded):
                recordings = parts.acd.recorder
                if recordings is not None and event.stored:
                    _spawn(parts.tasks, recordings.finished(event.name))
                elif recordings is not None:
                    _spawn(parts.tasks, recordings.failed(event.name, event.cause))
            elif isinstance(event, stasis.HoldChanged):
                parts.acd.phone_hold(event.channel_id, event.on)
            elif isinstance(event, stasis.EndpointChanged):
                parts.acd.endpoint_changed(event.resource, event.online)
            elif isinstance(event, stasis.MonitorLegAnswered):
                parts.monitor.leg_answered(event.channel_id, event.session_id)
            elif isinstance(event, stasis.SnoopStarted):
                parts.monitor.snoop_started(event.channel_id, event.session_id)
            elif isinstance(event, DigitReceived) and parts.monitor.digit(
                event.call_id, event.digit
            ):
                pass  # a key on a supervisor's phone: the session's mode
            elif event is not None:
                if isinstance(event, PromptFinished):  # a waiting caller's announcement too
                    parts.acd.announced(event.call_id, event.playback_id)
                parts.calls.handle(event, stasis.timestamp(message.get("timestamp")))
                if isinstance(event, ChannelGone):
                    parts.acd.channel_gone(event.call_id)
                    parts.monitor.channel_gone(event.call_id)
        except stasis.ApplicationReplaced:
            raise
        except Exception:
            # one malformed or unexpected event must not take every other call down
            log.exception("ari_event_failed", ari_event=message.get("type"))


def _report_unfinished() -> None:
    """Log every task still running, with where it waits: a stop taking this long hangs."""
    for task in asyncio.all_tasks():
        if task.done():
            continue
        frames = [f"{f.f_code.co_filename}:{f.f_lineno} {f.f_code.co_name}"
                  for f in task.get_stack()]  # fmt: skip
        log.warning("stop_waits_for", task=task.get_name(), waits_at=frames)


async def serve(parts: Parts, stop: asyncio.Event) -> None:
    """Run every long-lived task in one TaskGroup until stop is set or one fails."""

    async def stopper() -> None:
        await stop.wait()
        log.info("stopping")
        # a stop that hangs says what it still waits for (the process has ended otherwise)
        asyncio.get_running_loop().call_later(8.0, _report_unfinished)
        parts.server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await parts.writer.drain(timeout=5.0)
        raise _Stop

    # What start-up built (modules, flows, the center's configuration) lives as long as
    # the process: kept out of the collector's full passes, which then scan only what the
    # calls add (such a pass over everything took up to 300 ms at 30 calls/s).
    gc.freeze()
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(parts.writer.run(), name="db-writer")
            group.create_task(parts.acd.run(), name="acd")
            keep = parts.settings.recordings_keep_days
            if keep and parts.acd.recorder is not None:
                group.create_task(parts.acd.recorder.keep_pruning(keep), name="retention")
            group.create_task(parts.ami.run(), name="ami")
            group.create_task(parts.cdr.run(), name="cdr")
            group.create_task(parts.live.run(), name="live-stats")
            group.create_task(parts.kpi_keeper.run(), name="kpi-sums")
            group.create_task(consume_events(parts), name="ari-events")
            group.create_task(parts.lease.keep(parts.events.connected), name="lease")
            group.create_task(parts.server.serve(), name="api")
            if parts.mqtt is not None:
                group.create_task(parts.mqtt.run(), name="mqtt")
            group.create_task(parts.loop_lag.run(), name="loop-lag")
            group.create_task(stopper(), name="stopper")
    except* _Stop:
        with contextlib.suppress(AriError, AriUnreachable):
            await parts.lease.release()
    except* stasis.ApplicationReplaced as group_error:
        raise StartupError(
            f"another connection took over the application '{parts.settings.ari_application}' "
            "(ApplicationReplaced); stopping, not fighting back",
            "ARI_APP_ARI_APPLICATION",
        ) from group_error
    finally:
        for task in parts.tasks:
            task.cancel()
        if parts.tasks:  # let them finish being cancelled (their connections go back)
            await asyncio.wait(set(parts.tasks), timeout=5.0)
        await parts.ari.aclose()
        await parts.ami.aclose()
        await parts.backends.aclose()
        # closes the pooled connections: an SQLite connection's thread left open
        # would keep the process from exiting
        await parts.engine.dispose()


async def run(settings: Settings) -> None:
    """`ari-app run`: build, serve until SIGINT or SIGTERM, stop cleanly."""
    logs.configure(settings.log_level, settings.log_format)
    parts = await build(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    # SIGHUP reloads the flows (new calls take the new versions, live calls keep theirs)
    # and the queues (the next routing decision follows them)
    async def reload_flows() -> None:
        await parts.flows.reload()
        try:
            await parts.queues.reload()
        except QueueRefused as exc:
            log.error("queues_not_reloaded", problems=exc.problems)

    loop.add_signal_handler(signal.SIGHUP, lambda: _spawn(parts.tasks, reload_flows()))
    log.info(
        "started",
        application=settings.ari_application,
        ari=settings.ari_url,
        api=f"http://{settings.api_host}:{settings.api_port}",
    )
    await serve(parts, stop)

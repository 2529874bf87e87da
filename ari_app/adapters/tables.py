"""Database tables (SQLModel). The schema itself is owned by the Alembic migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime
from sqlmodel import Field, SQLModel


def _when(*, nullable: bool = True, index: bool = False) -> object:
    return Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index)
    )


class CallBase(SQLModel):
    caller: str = Field(max_length=80)
    dialled: str = Field(max_length=80)
    started_at: datetime = _when(nullable=False, index=True)  # type: ignore[assignment]
    answered_at: datetime | None = _when()  # type: ignore[assignment]
    ended_at: datetime | None = _when()  # type: ignore[assignment]
    hangup_cause: int | None = None
    hangup_cause_text: str | None = Field(default=None, max_length=80)
    hangup_side: str | None = Field(default=None, max_length=16)
    phase: str = Field(max_length=16)
    flow: str | None = Field(default=None, max_length=80)
    flow_version: int | None = None
    ivr_outcome: str | None = Field(default=None, max_length=32)
    # the IVR path: [{"node", "at", "note"}], in order
    ivr_path: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))


class CallRecord(CallBase, table=True):
    """One inbound call; its id is the Asterisk channel id (`uniqueid`)."""

    __tablename__ = "call"

    id: str = Field(primary_key=True, max_length=64)


class CallPublic(CallBase):
    id: str


class ApiToken(SQLModel, table=True):
    """A bearer token for the admin API; only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80)
    role: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, unique=True)
    subject: str | None = Field(default=None, max_length=32, index=True)  # the user's id
    created_at: datetime = _when(nullable=False)  # type: ignore[assignment]
    expires_at: datetime | None = _when()  # type: ignore[assignment]
    revoked_at: datetime | None = _when()  # type: ignore[assignment]


class UserRecord(SQLModel, table=True):
    """A user of the admin API: their role and, for a supervisor, the teams they watch.
    Their tokens carry their id as `subject`."""

    __tablename__ = "app_user"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=80)
    role: str = Field(max_length=16)
    teams: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _when(nullable=False)  # type: ignore[assignment]
    updated_at: datetime = _when(nullable=False)  # type: ignore[assignment]


class AuditRecord(SQLModel, table=True):
    """One change asked of the service (or refused): who, what, the state before and
    after, when. Rows are only ever added."""

    __tablename__ = "audit"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when(nullable=False, index=True)  # type: ignore[assignment]
    actor: str = Field(max_length=80, index=True)  # the user, or the token without one
    role: str = Field(max_length=16)
    action: str = Field(max_length=120)  # "PATCH /api/v1/agents/{agent_id}", "cli users add"
    target: str = Field(max_length=300)  # the path asked, or what the command named
    outcome: int  # the HTTP status: 2xx done, else refused and nothing changed
    detail: str | None = Field(default=None, max_length=300)
    asked: Any = Field(default=None, sa_column=Column(JSON))  # the request's body
    before: Any = Field(default=None, sa_column=Column(JSON))
    after: Any = Field(default=None, sa_column=Column(JSON))


class AgentRecord(SQLModel, table=True):
    """An agent and their phone. The SIP password is kept only as the digest PJSIP checks
    (md5 of user:realm:password), so the database never holds it in clear."""

    __tablename__ = "agent"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=80)
    team: str = Field(default="", max_length=40)
    skills: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    wrap_up_seconds: int = 30
    recording: str = Field(default="queue", max_length=8)  # queue, always or never
    sip_digest: str = Field(max_length=32)
    created_at: datetime = _when(nullable=False)  # type: ignore[assignment]
    updated_at: datetime = _when(nullable=False)  # type: ignore[assignment]


class AgentStateRecord(SQLModel, table=True):
    """Where an agent's availability is now (one row per agent)."""

    __tablename__ = "agent_state"

    agent_id: str = Field(primary_key=True, max_length=32)
    state: str = Field(max_length=16)
    since: datetime | None = _when()  # type: ignore[assignment]
    reason: str = Field(default="", max_length=32)
    call_id: str | None = Field(default=None, max_length=64)
    missed: int = 0
    pending: str | None = Field(default=None, max_length=16)
    pending_reason: str = Field(default="", max_length=32)
    wrap_up_until: datetime | None = _when()  # type: ignore[assignment]


class AgentEventRecord(SQLModel, table=True):
    """The audit trail of every change of an agent's state, and where it came from."""

    __tablename__ = "agent_event"

    id: int | None = Field(default=None, primary_key=True)
    agent_id: str = Field(max_length=32, index=True)
    at: datetime = _when(nullable=False)  # type: ignore[assignment]
    event: str = Field(max_length=32)
    from_state: str = Field(max_length=16)
    to_state: str = Field(max_length=16)
    reason: str = Field(default="", max_length=32)
    source: str = Field(max_length=16)  # api, phone, acd


class RoutingDecision(SQLModel, table=True):
    """Why a call went to an agent: the step, who was considered, why this one."""

    __tablename__ = "routing_decision"

    id: int | None = Field(default=None, primary_key=True)
    call_id: str = Field(max_length=64, index=True)
    at: datetime = _when(nullable=False)  # type: ignore[assignment]
    agent_id: str = Field(max_length=32)
    queue: str = Field(max_length=32)
    step: int
    requirement: str = Field(max_length=400)
    strategy: str = Field(max_length=16)
    free_agents: int
    qualified: int
    waiting_calls: int
    candidates: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    why: str = Field(max_length=600)


class CallbackRecord(SQLModel, table=True):
    """A caller who asked to be called back: their place in line, and how it went."""

    __tablename__ = "callback_request"

    id: str = Field(primary_key=True, max_length=80)  # cb-<the caller's channel id>
    call_id: str = Field(max_length=64, index=True)  # the call that asked
    number: str = Field(max_length=80)
    queue: str = Field(max_length=32)
    priority: int = 0
    skills: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    language: str = Field(default="en", max_length=16)
    waiting_since: datetime = _when(nullable=False)  # type: ignore[assignment]
    state: str = Field(max_length=16, index=True)  # waiting scheduled talking done failed
    attempts: int = 0  # calls back so far
    max_attempts: int = 3
    retry_after: float = 300.0
    retry_at: datetime | None = _when()  # type: ignore[assignment]
    agent_id: str | None = Field(default=None, max_length=32)
    updated_at: datetime = _when(nullable=False)  # type: ignore[assignment]


class RecordingRecord(SQLModel, table=True):
    """A recorded conversation: what it belongs to and the file that holds it."""

    __tablename__ = "recording"

    id: str = Field(primary_key=True, max_length=64)  # rec-<random>: also the file's name
    call_id: str = Field(max_length=80, index=True)
    agent_id: str | None = Field(default=None, max_length=32, index=True)
    queue: str | None = Field(default=None, max_length=32, index=True)
    state: str = Field(max_length=16)  # recording, paused, stored, failed
    format: str = Field(default="wav", max_length=8)
    started_at: datetime = _when(nullable=False, index=True)  # type: ignore[assignment]
    ended_at: datetime | None = _when()  # type: ignore[assignment]
    duration: float | None = None  # seconds of audio in the file
    size: int | None = None  # bytes
    sha256: str | None = Field(default=None, max_length=64)
    pauses: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )  # [{"from": ..., "to": ...}]: spans left out of the file
    error: str | None = Field(default=None, max_length=200)
    segments: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )  # [{"agent_id": ..., "from": ..., "to": ...}]: who had the conversation when


class SupervisorRecord(SQLModel, table=True):
    """A supervisor: a team they may monitor, and a phone (`supervisor-<id>`)."""

    __tablename__ = "supervisor"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=80)
    team: str = Field(max_length=40)
    sip_digest: str = Field(max_length=32)
    created_at: datetime = _when(nullable=False)  # type: ignore[assignment]
    updated_at: datetime = _when(nullable=False)  # type: ignore[assignment]


class MonitorRecord(SQLModel, table=True):
    """One monitor session, the audit of it: who listened to whom, on which call, in
    which modes when, and how it ended (or why it was refused)."""

    __tablename__ = "monitor_session"

    id: str = Field(primary_key=True, max_length=40)  # mon-<random>
    call_id: str = Field(max_length=80, index=True)
    agent_id: str | None = Field(default=None, max_length=32, index=True)
    supervisor_id: str = Field(max_length=32, index=True)
    requested_by: str = Field(max_length=80)  # the token's name, or the phone
    source: str = Field(max_length=16)  # api, phone
    state: str = Field(max_length=16)  # ringing, active, ended, refused
    modes: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )  # [{"mode": ..., "from": ..., "to": ...}]
    started_at: datetime = _when(nullable=False, index=True)  # type: ignore[assignment]
    answered_at: datetime | None = _when()  # type: ignore[assignment]
    ended_at: datetime | None = _when()  # type: ignore[assignment]
    end_reason: str | None = Field(default=None, max_length=200)
    supervisor_channel: str | None = Field(default=None, max_length=80)


class CdrRecord(SQLModel, table=True):
    """One CDR as Asterisk posted it (one per leg), keyed by (uniqueid, sequence);
    `source` says which path stored it first: ami (live) or backstop (the file)."""

    __tablename__ = "cdr"

    uniqueid: str = Field(primary_key=True, max_length=64)
    sequence: int = Field(primary_key=True)
    linkedid: str = Field(max_length=64, index=True)
    channel: str = Field(max_length=200)
    dstchannel: str = Field(max_length=200)
    src: str = Field(max_length=200)
    dst: str = Field(max_length=200)
    dcontext: str = Field(max_length=200)
    clid: str = Field(max_length=200)
    lastapp: str = Field(max_length=200)
    lastdata: str = Field(max_length=200)
    start: datetime = _when(nullable=False, index=True)  # type: ignore[assignment]
    answer: datetime | None = _when()  # type: ignore[assignment]
    end: datetime = _when(nullable=False)  # type: ignore[assignment]
    duration: int
    billsec: int
    disposition: str = Field(max_length=200)
    amaflags: str = Field(max_length=200)
    accountcode: str = Field(max_length=200)
    peeraccount: str = Field(max_length=200)
    userfield: str = Field(max_length=200)
    source: str = Field(max_length=16)


class CelRecord(SQLModel, table=True):
    """One channel event (CEL), keyed by channel, event and time (microseconds)."""

    __tablename__ = "cel"

    uniqueid: str = Field(primary_key=True, max_length=64)
    event: str = Field(primary_key=True, max_length=200)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), primary_key=True))
    linkedid: str = Field(max_length=200, index=True)
    channel: str = Field(max_length=200)
    caller: str = Field(max_length=200)
    caller_name: str = Field(max_length=200)
    exten: str = Field(max_length=200)
    context: str = Field(max_length=200)
    app: str = Field(max_length=200)
    appdata: str = Field(max_length=200)
    peer: str = Field(max_length=200)
    extra: Any = Field(default=None, sa_column=Column(JSON))


class BackstopCheckpoint(SQLModel, table=True):
    """How far a file Asterisk appends to (CDR backstop, CEL) has been read."""

    __tablename__ = "backstop_checkpoint"

    name: str = Field(primary_key=True, max_length=16)  # cdr, cel
    inode: int
    offset: int
    updated_at: datetime = _when(nullable=False)  # type: ignore[assignment]


class InteractionRecord(SQLModel, table=True):
    """One customer call as the KPIs see it (domain/kpi.py `Interaction`), kept up to
    date as it goes; `open` holds what is still running (a segment, wrap-ups)."""

    __tablename__ = "interaction"

    call_id: str = Field(primary_key=True, max_length=64)
    caller: str = Field(max_length=80, index=True)
    arrived_at: datetime = _when(nullable=False, index=True)  # type: ignore[assignment]
    ended_at: datetime | None = _when()  # type: ignore[assignment]
    ivr: bool = False
    self_served: bool = False
    queue: str | None = Field(default=None, max_length=32, index=True)
    queued_at: datetime | None = _when(index=True)  # type: ignore[assignment]
    answered_at: datetime | None = _when()  # type: ignore[assignment]
    abandoned_at: datetime | None = _when()  # type: ignore[assignment]
    left_at: datetime | None = _when()  # type: ignore[assignment]
    blocked: bool = False
    segments: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )  # [{agent_id, answered_at, ended_at, hold_seconds, wrap_up_seconds}]
    resolved: bool | None = None
    disposition: str | None = Field(default=None, max_length=64)
    open: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = _when(nullable=False)  # type: ignore[assignment]
    # for the KPI queries (adapters/kpi_store.py): moments in microseconds since the
    # epoch, the wait, the segments' sums, and the gap to the caller's next call
    arrived_us: int = Field(sa_column=Column(BigInteger, nullable=False))
    queued_us: int | None = Field(default=None, sa_column=Column(BigInteger))
    ended_us: int | None = Field(default=None, sa_column=Column(BigInteger))
    wait_seconds: float | None = None
    handle_seconds: float = 0.0
    wrap_up_seconds: float = 0.0
    repeat_after: float | None = None  # seconds from the end to the caller's next arrival


class InteractionSegmentRecord(SQLModel, table=True):
    """An agent's part of an interaction, for the agent figures (a copy of the
    interaction's `segments`, kept with it)."""

    __tablename__ = "interaction_segment"

    call_id: str = Field(primary_key=True, max_length=64)
    n: int = Field(primary_key=True)
    agent_id: str = Field(max_length=64)
    answered_us: int = Field(sa_column=Column(BigInteger, nullable=False))
    handle_seconds: float
    wrap_up_seconds: float


class KpiIntervalRecord(SQLModel, table=True):
    """A 15-minute interval whose KPI sums are kept added up (adapters/kpi_rollup.py),
    under the targets they were added up with."""

    __tablename__ = "kpi_interval"

    bucket_us: int = Field(sa_column=Column(BigInteger, primary_key=True))
    targets: str = Field(max_length=64)
    made_at: datetime = _when(nullable=False)  # type: ignore[assignment]


class KpiQueueIntervalRecord(SQLModel, table=True):
    """A queue's sums (domain/kpi.py `QueueSums`) for one 15-minute interval."""

    __tablename__ = "kpi_queue_interval"

    bucket_us: int = Field(sa_column=Column(BigInteger, primary_key=True))
    queue: str = Field(primary_key=True, max_length=32)
    targets: str = Field(max_length=64)
    blocked: int
    entered: int
    short_abandoned: int
    handled: int
    abandoned: int
    within_target: int
    answer_wait: float
    waited: int
    wait: float
    longest_wait: float | None = None
    handle: float
    wrap_up: float
    resolved: int


class KpiAgentIntervalRecord(SQLModel, table=True):
    """An agent's sums (domain/kpi.py `AgentSums`) for one 15-minute interval."""

    __tablename__ = "kpi_agent_interval"

    bucket_us: int = Field(sa_column=Column(BigInteger, primary_key=True))
    agent_id: str = Field(primary_key=True, max_length=64)
    targets: str = Field(max_length=64)
    handled: int
    handle: float
    wrap_up: float
    handling: float  # seconds on call or in wrap-up
    staffed: float  # seconds logged in and not paused


class KpiIvrIntervalRecord(SQLModel, table=True):
    """The IVR's sums for one 15-minute interval."""

    __tablename__ = "kpi_ivr_interval"

    bucket_us: int = Field(sa_column=Column(BigInteger, primary_key=True))
    targets: str = Field(max_length=64)
    entered: int
    contained: int


class TeamRecord(SQLModel, table=True):
    """A team of agents, by the name their profiles give (`AgentRecord.team`)."""

    __tablename__ = "team"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=80)  # as people read it
    updated_at: datetime = _when(nullable=False)  # type: ignore[assignment]


class SkillRecord(SQLModel, table=True):
    """A skill agents hold and queues ask for, with what it means."""

    __tablename__ = "skill"

    id: str = Field(primary_key=True, max_length=32)
    description: str = Field(default="", max_length=200)
    updated_at: datetime = _when(nullable=False)  # type: ignore[assignment]


class NumberRecord(SQLModel, table=True):
    """A service number and the IVR flow its callers get."""

    __tablename__ = "service_number"

    id: str = Field(primary_key=True, max_length=32)  # what the caller dialled
    flow: str = Field(max_length=80)
    label: str = Field(default="", max_length=80)
    updated_at: datetime = _when(nullable=False)  # type: ignore[assignment]


class FlowVersionRecord(SQLModel, table=True):
    """Every version of an IVR flow ever stored, as its text; the one in force is the
    flow file in the flows folder."""

    __tablename__ = "flow_version"

    flow: str = Field(primary_key=True, max_length=80)
    version: int = Field(primary_key=True)
    text: str
    sha256: str = Field(max_length=64)
    stored_at: datetime = _when(nullable=False)  # type: ignore[assignment]
    stored_by: str = Field(max_length=80)
    activated_at: datetime | None = _when()  # type: ignore[assignment]  # last in force

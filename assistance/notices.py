"""Assistance notices (协助执行通知书): a court asks an agency — a bank, a real-estate
registry, the traffic police, a market regulator — to carry out a measure on a debtor's
property.

Pure domain: `create_notice` validates a `CreateNotice` command and returns the sent
`AssistanceNotice` with the `AssistanceNoticeSent` event it records; persistence,
idempotency and publication are the service layer's job. The later steps (receive, reply,
object, answer the objection, the seizure queue) are in `assistance.notice_lifecycle`.

Each kind of notice (`KIND_RULES`) fixes which agencies can carry it out, what it acts on
(a deposit account, a registered property, a share of a company, income), which documents
it must carry (ruling 裁定书, the notice itself 协助执行通知书, the officers' credentials
工作证/执行公务证), which results an agency may reply with, and whether it puts a seizure
in place, renews one or lifts one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from assistance.notice_targets import (
    DepositAccount,
    Equity,
    Income,
    NoticeTarget,
    RegisteredProperty,
    Subject,
    asset_key,
    check_documents,
    check_subject,
    is_respondent,
)
from assistance.seizures import AssetClass, Seizure, SeizureState
from delegation.details import MAX_NAME_LENGTH, MAX_TEXT_LENGTH, Attachment, AttachmentKind, PropertyKind
from registry.access import check_case_access, check_case_name, court_id_of
from registry.agencies import Agency, AgencyCatalog, AgencyKind
from registry.courts import CourtCatalog
from registry.errors import FailedPrecondition, Violations, parse_enum
from registry.text import check_text

MAX_TARGET_LENGTH = 500


class NoticeKind(StrEnum):
    """Measures the law names; names match rogatory.assistance.v1.AssistanceNotice.Kind."""

    QUERY_DEPOSITS = "QUERY_DEPOSITS"
    FREEZE_DEPOSITS = "FREEZE_DEPOSITS"
    RENEW_FREEZE_DEPOSITS = "RENEW_FREEZE_DEPOSITS"
    UNFREEZE_DEPOSITS = "UNFREEZE_DEPOSITS"
    DEDUCT_DEPOSITS = "DEDUCT_DEPOSITS"
    SEAL_PROPERTY = "SEAL_PROPERTY"
    RENEW_SEAL_PROPERTY = "RENEW_SEAL_PROPERTY"
    UNSEAL_PROPERTY = "UNSEAL_PROPERTY"
    TRANSFER_PROPERTY = "TRANSFER_PROPERTY"
    FREEZE_EQUITY = "FREEZE_EQUITY"
    WITHHOLD_INCOME = "WITHHOLD_INCOME"


class NoticeState(StrEnum):
    """Names match rogatory.assistance.v1.AssistanceNotice.State; only domain commands change it."""

    SENT = "SENT"
    RECEIVED = "RECEIVED"
    ANSWERED = "ANSWERED"
    OBJECTED = "OBJECTED"
    WITHDRAWN = "WITHDRAWN"


class ResultKind(StrEnum):
    """Names match rogatory.assistance.v1.NoticeResult.Kind."""

    REGISTERED = "REGISTERED"
    QUEUED = "QUEUED"  # 轮候
    FROZEN = "FROZEN"
    DEDUCTED = "DEDUCTED"
    FOUND = "FOUND"
    NOT_FOUND = "NOT_FOUND"


class SeizureEffect(StrEnum):
    """What an effective result does to seizures."""

    NONE = "NONE"
    SEIZE = "SEIZE"  # a freeze or seal: a new seizure with its term
    RENEW = "RENEW"  # extends the referenced seizure's term
    RELEASE = "RELEASE"  # lifts the referenced seizure; the next queued one takes effect


_DEPOSITS = frozenset({AgencyKind.BANK})
_REGISTERED_PROPERTY = frozenset({AgencyKind.REAL_ESTATE_REGISTRY, AgencyKind.TRAFFIC_POLICE})
_FULL_SET = frozenset({AttachmentKind.RULING, AttachmentKind.ASSISTANCE_NOTICE, AttachmentKind.OFFICER_CREDENTIALS})
#: A query needs no ruling: the notice and the officers' credentials (协助查询 practice).
_QUERY_SET = frozenset({AttachmentKind.ASSISTANCE_NOTICE, AttachmentKind.OFFICER_CREDENTIALS})
R = ResultKind


@dataclass(frozen=True)
class KindRule:
    agencies: frozenset[AgencyKind] | None  # None: any agency (income is withheld by whoever pays it)
    subject: type[Subject]
    measure: str  # the delegation.details measure it corresponds to, for the subject's checks
    documents: frozenset[AttachmentKind]
    results: frozenset[ResultKind]
    effect: SeizureEffect = SeizureEffect.NONE
    subject_optional: bool = False  # a query covers all of the debtor's accounts


#: A table rather than code, so a province's practice (e.g. online-payment providers taking
#: deposit measures) is a one-line change.
KIND_RULES: dict[NoticeKind, KindRule] = {
    NoticeKind.QUERY_DEPOSITS: KindRule(
        _DEPOSITS, DepositAccount, "QUERY", _QUERY_SET, frozenset({R.FOUND, R.NOT_FOUND}), subject_optional=True
    ),
    NoticeKind.FREEZE_DEPOSITS: KindRule(
        _DEPOSITS, DepositAccount, "FREEZE", _FULL_SET, frozenset({R.FROZEN, R.QUEUED, R.NOT_FOUND}), SeizureEffect.SEIZE
    ),
    NoticeKind.RENEW_FREEZE_DEPOSITS: KindRule(
        _DEPOSITS,
        DepositAccount,
        "RENEW_FREEZE",
        _FULL_SET,
        frozenset({R.FROZEN, R.REGISTERED, R.NOT_FOUND}),
        SeizureEffect.RENEW,
    ),
    NoticeKind.UNFREEZE_DEPOSITS: KindRule(
        _DEPOSITS, DepositAccount, "UNFREEZE", _FULL_SET, frozenset({R.REGISTERED, R.NOT_FOUND}), SeizureEffect.RELEASE
    ),
    NoticeKind.DEDUCT_DEPOSITS: KindRule(_DEPOSITS, DepositAccount, "DEDUCT", _FULL_SET, frozenset({R.DEDUCTED, R.NOT_FOUND})),
    NoticeKind.SEAL_PROPERTY: KindRule(
        _REGISTERED_PROPERTY,
        RegisteredProperty,
        "SEAL",
        _FULL_SET,
        frozenset({R.REGISTERED, R.QUEUED, R.NOT_FOUND}),
        SeizureEffect.SEIZE,
    ),
    NoticeKind.RENEW_SEAL_PROPERTY: KindRule(
        _REGISTERED_PROPERTY,
        RegisteredProperty,
        "RENEW_SEAL",
        _FULL_SET,
        frozenset({R.REGISTERED, R.NOT_FOUND}),
        SeizureEffect.RENEW,
    ),
    NoticeKind.UNSEAL_PROPERTY: KindRule(
        _REGISTERED_PROPERTY,
        RegisteredProperty,
        "UNSEAL",
        _FULL_SET,
        frozenset({R.REGISTERED, R.NOT_FOUND}),
        SeizureEffect.RELEASE,
    ),
    NoticeKind.TRANSFER_PROPERTY: KindRule(
        _REGISTERED_PROPERTY, RegisteredProperty, "TRANSFER", _FULL_SET, frozenset({R.REGISTERED, R.NOT_FOUND})
    ),
    NoticeKind.FREEZE_EQUITY: KindRule(
        frozenset({AgencyKind.MARKET_REGULATOR}),
        Equity,
        "FREEZE",
        _FULL_SET,
        frozenset({R.REGISTERED, R.QUEUED, R.NOT_FOUND}),
        SeizureEffect.SEIZE,
    ),
    NoticeKind.WITHHOLD_INCOME: KindRule(None, Income, "WITHHOLD", _FULL_SET, frozenset({R.REGISTERED, R.NOT_FOUND})),
}

#: Kept for callers of the first slice: which agencies can carry out each measure.
ACCEPTING_AGENCY_KINDS: dict[NoticeKind, frozenset[AgencyKind] | None] = {k: r.agencies for k, r in KIND_RULES.items()}
TARGET_OPTIONAL = frozenset(k for k, r in KIND_RULES.items() if r.subject_optional)
#: Renewals and releases act on a seizure this service tracks.
SEIZURE_REFERENCE_REQUIRED = frozenset(
    k for k, r in KIND_RULES.items() if r.effect in (SeizureEffect.RENEW, SeizureEffect.RELEASE)
)


def notice_name(court_id: str, notice_id: str) -> str:
    return f"courts/{court_id}/assistanceNotices/{notice_id}"


def asset_class_of(kind: NoticeKind, target: NoticeTarget) -> AssetClass | None:
    """The asset class of what a seizing notice seizes (民诉法解释 art. 485 terms)."""
    subject = target.subject
    if isinstance(subject, DepositAccount):
        return AssetClass.DEPOSITS
    if isinstance(subject, RegisteredProperty):
        return AssetClass.REAL_ESTATE if subject.property_kind == PropertyKind.REAL_ESTATE else AssetClass.MOVABLES
    if isinstance(subject, Equity | Income):
        return AssetClass.RIGHTS
    return None


# --- the notice -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeResult:
    kind: ResultKind
    amount_fen: int | None = None
    queue_position: int = 0  # QUEUED: 1 = next; 0 once in effect
    reference: str = ""
    documents: tuple[Attachment, ...] = ()
    note: str = ""
    effective_at: datetime | None = None  # QUEUED: when it took effect


class ObjectionReason(StrEnum):
    NOT_DEBTORS_PROPERTY = "NOT_DEBTORS_PROPERTY"
    EXEMPT_PROPERTY = "EXEMPT_PROPERTY"
    DEFECTIVE_NOTICE = "DEFECTIVE_NOTICE"
    OTHER = "OTHER"


class ObjectionDecision(StrEnum):
    MAINTAIN = "MAINTAIN"
    WITHDRAW = "WITHDRAW"


@dataclass(frozen=True)
class ObjectionAnswer:
    decision: ObjectionDecision
    note: str
    answered_at: datetime


@dataclass(frozen=True)
class Objection:
    reason: ObjectionReason
    note: str
    objected_at: datetime
    answer_due: datetime  # 15 days (网络查询冻结存款规定 art. 6), CPL art. 85 counting
    answer: ObjectionAnswer | None = None
    overdue_flagged_at: datetime | None = None  # set by the scanner

    def is_overdue(self, now: datetime) -> bool:
        return self.answer is None and now > self.answer_due


@dataclass(frozen=True)
class AssistanceNotice:
    id: str
    court_id: str
    case_name: str  # courts/{court}/cases/{case}
    agency_id: str
    kind: NoticeKind
    target: str  # the target in words, optional
    created_at: datetime
    updated_at: datetime
    state: NoticeState = NoticeState.SENT
    version: int = 1  # bumped by every change, for optimistic concurrency (etag)
    target_details: NoticeTarget | None = None
    documents: tuple[Attachment, ...] = ()
    seizure_name: str = ""  # renewals and releases: the seizure acted on
    received_at: datetime | None = None
    served_at: datetime | None = None  # real-estate registries: receipt is service
    result: NoticeResult | None = None
    replied_at: datetime | None = None
    objection: Objection | None = None
    resulting_seizure: str = ""  # the seizure this notice put in place

    @property
    def name(self) -> str:
        return notice_name(self.court_id, self.id)

    @property
    def rule(self) -> KindRule:
        return KIND_RULES[self.kind]

    @property
    def asset_key(self) -> str:
        return asset_key(self.agency_id, self.target_details or NoticeTarget(""))

    @property
    def waiting_in_queue(self) -> bool:
        r = self.result
        return self.state is NoticeState.ANSWERED and r is not None and r.kind is ResultKind.QUEUED and r.effective_at is None


@dataclass(frozen=True)
class AssistanceNoticeSent:
    notice: AssistanceNotice


@dataclass(frozen=True)
class CreateNotice:
    """The command: what a court's system sends, still unvalidated."""

    parent: str  # courts/{court}
    case: str  # courts/{court}/cases/{case}
    agency: str  # agencies/{agency}
    kind: str  # a NoticeKind name; "" when unspecified
    target: str = ""
    target_details: NoticeTarget | None = None
    documents: tuple[Attachment, ...] = ()
    seizure: str = ""  # courts/{court}/seizures/{seizure}


def create_notice(
    command: CreateNotice,
    courts: CourtCatalog,
    agencies: AgencyCatalog,
    case_court_id: str | None,
    now: datetime,
    *,
    notice_id: str,
    respondents: tuple[str, ...] = (),
    seizure: Seizure | None = None,
) -> tuple[AssistanceNotice, list[AssistanceNoticeSent]]:
    """Validates the command and returns the sent notice and its event.

    `case_court_id` is the case's court as the caller's case replica knows it (None: not
    seen) and `respondents` the case's respondents' names; `seizure` is the seizure the
    command names, as the service found it (None: none named, or none found). `notice_id`
    is injected like `now`. Raises InvalidArgument with every field violation at once,
    then PermissionDenied (NOT_CASE_OWNER) or FailedPrecondition (CASE_NOT_REGISTERED,
    NOT_A_DEBTOR, SEIZURE_NOT_ACTIVE).
    """
    violations = Violations()
    court_id = court_id_of(command.parent, "parent", courts, violations)
    check_case_name(command.case, "assistance_notice.case", violations)
    agency = _check_agency(command.agency, agencies, violations)
    kind = parse_enum(NoticeKind, command.kind, "assistance_notice.kind", violations)
    if agency is not None and kind is not None:
        _check_agency_fits(agency, kind, violations)
    target = command.target.strip()
    check_text(target, "assistance_notice.target", violations, max_length=MAX_TARGET_LENGTH, required=False)
    details = _check_target(command, kind, agency, seizure, violations)
    if kind is not None:
        rule = KIND_RULES[kind]
        check_documents(command.documents, rule.documents, "assistance_notice.documents", violations, why=f"for {kind}")
    _check_seizure_reference(command, kind, seizure, violations)
    violations.raise_if_any()
    assert court_id is not None and agency is not None and kind is not None and details is not None
    check_case_access(court_id, command.case, case_court_id)
    if not is_respondent(details.debtor, respondents):
        raise FailedPrecondition(
            f"{details.debtor} is not a respondent (debtor) of {command.case}; measures only target the case's debtors",
            reason="NOT_A_DEBTOR",
            metadata={"case": command.case, "debtor": details.debtor},
        )
    _check_seizure_state(command, kind, agency, seizure, now)
    notice = AssistanceNotice(
        id=notice_id,
        court_id=court_id,
        case_name=command.case,
        agency_id=agency.id,
        kind=kind,
        target=target,
        created_at=now,
        updated_at=now,
        target_details=details,
        documents=command.documents,
        seizure_name=command.seizure.strip(),
    )
    return notice, [AssistanceNoticeSent(notice)]


def _check_agency(name: str, agencies: AgencyCatalog, violations: Violations) -> Agency | None:
    parts = name.split("/")
    if len(parts) != 2 or parts[0] != "agencies" or not parts[1]:
        violations.add(
            "assistance_notice.agency", f"must be an agency resource name, agencies/{{agency}}, got {name!r}", "RESOURCE_NAME"
        )
        return None
    agency = agencies.get(parts[1])
    if agency is None:
        violations.add("assistance_notice.agency", f"unknown agency {name!r}", "UNKNOWN_AGENCY")
    return agency


def _check_agency_fits(agency: Agency, kind: NoticeKind, violations: Violations) -> None:
    accepted = KIND_RULES[kind].agencies
    if accepted is not None and agency.kind not in accepted:
        wanted = " or ".join(sorted(accepted))
        violations.add(
            "assistance_notice.agency",
            f"{kind} needs a {wanted} agency; agencies/{agency.id} is a {agency.kind}",
            "AGENCY_KIND_MISMATCH",
        )


def _check_target(
    command: CreateNotice, kind: NoticeKind | None, agency: Agency | None, seizure: Seizure | None, violations: Violations
) -> NoticeTarget | None:
    path = "assistance_notice.target_details"
    given = command.target_details
    if given is None:
        if seizure is not None:
            return seizure.target  # a renewal or release acts on what the seizure holds
        violations.add(path, "the debtor and what the measure acts on", "REQUIRED")
        return None
    debtor = given.debtor
    check_text(debtor, f"{path}.debtor", violations, max_length=MAX_NAME_LENGTH)
    if kind is None:
        return given
    rule = KIND_RULES[kind]
    subject = given.subject
    optional = rule.subject_optional or (seizure is not None and subject is None)
    checked = check_subject(
        subject, rule.subject, optional, rule.measure, debtor, agency.name if agency else "", path, violations
    )
    if checked is None and seizure is not None:
        checked = seizure.target.subject
    return NoticeTarget(debtor, checked)


def _check_seizure_reference(
    command: CreateNotice, kind: NoticeKind | None, seizure: Seizure | None, violations: Violations
) -> None:
    path = "assistance_notice.seizure"
    name = command.seizure.strip()
    if kind is None:
        return
    if kind in SEIZURE_REFERENCE_REQUIRED and not name:
        violations.add(path, f"{kind} acts on a seizure: name it, courts/{{court}}/seizures/{{seizure}}", "REQUIRED")
    elif name and kind not in SEIZURE_REFERENCE_REQUIRED:
        violations.add(path, f"only renewals and releases name a seizure, not {kind}", "NOT_APPLICABLE")
    elif name and (seizure is None or f"courts/{seizure.court_id}" != command.parent):
        violations.add(path, f"unknown seizure {name!r} of {command.parent}", "UNKNOWN_SEIZURE")
    elif seizure is not None and asset_class_of(kind, seizure.target) is not None:
        expected = KIND_RULES[kind].subject
        if not isinstance(seizure.target.subject, expected):
            violations.add(path, f"{kind} cannot act on a {seizure.asset_class} seizure", "KIND_MISMATCH")


def _check_seizure_state(command: CreateNotice, kind: NoticeKind, agency: Agency, seizure: Seizure | None, now: datetime) -> None:
    if seizure is None or kind not in SEIZURE_REFERENCE_REQUIRED:
        return
    if seizure.agency_id != agency.id:
        raise FailedPrecondition(
            f"{seizure.name} was registered by agencies/{seizure.agency_id}; send the notice there",
            reason="SEIZURE_AT_OTHER_AGENCY",
            metadata={"seizure": seizure.name, "agency": f"agencies/{seizure.agency_id}"},
        )
    if seizure.state is not SeizureState.ACTIVE:
        raise FailedPrecondition(
            f"{seizure.name} is {seizure.state}: it can no longer be renewed or released",
            reason="SEIZURE_NOT_ACTIVE",
            metadata={"seizure": seizure.name, "state": str(seizure.state)},
        )
    if now > seizure.expires_at:
        # Ended, even if the scanner has not marked it lapsed yet: a renewal must come before the end.
        raise FailedPrecondition(
            f"{seizure.name} ended at {seizure.expires_at.isoformat()}; it can no longer be renewed or released",
            reason="SEIZURE_EXPIRED",
            metadata={"seizure": seizure.name},
        )


def check_note(note: str, path: str, violations: Violations, *, required: bool = False) -> str:
    note = note.strip()
    check_text(note, path, violations, max_length=MAX_TEXT_LENGTH, required=required)
    return note

"""Translation between registry protobuf messages and domain / stored objects."""

from __future__ import annotations

from rogatory.registry.v1 import registry_pb2 as pb

from registry.agencies import Agency
from registry.case_number import CaseNumber
from registry.cases import CloseCase, PartyInput, RegisterCase
from registry.courts import Court
from services.plumbing.fields import enum_name, parse_etag
from services.plumbing.money import money_from_fen, yuan_of
from services.plumbing.times import timestamp
from services.registry.store import CaseView


def court_to_proto(court: Court) -> pb.Court:
    return pb.Court(
        name=f"courts/{court.id}",
        code=court.code,
        display_name=court.name,
        level=pb.Court.Level.Value(str(court.level)),
        province=court.province,
        division_code=court.division_code,
        parent=f"courts/{court.parent_id}" if court.parent_id else "",
        special_kind=pb.Court.SpecialKind.Value(str(court.special_kind)) if court.special_kind else 0,
    )


def agency_to_proto(agency: Agency) -> pb.Agency:
    return pb.Agency(
        name=f"agencies/{agency.id}",
        display_name=agency.name,
        kind=pb.Agency.Kind.Value(str(agency.kind)),
        division_code=agency.division_code,
        scope=pb.Agency.Scope.Value(str(agency.scope)),
    )


def case_number_parts(number: CaseNumber) -> pb.CaseNumberParts:
    return pb.CaseNumberParts(
        year=number.year,
        court_code=number.court_code,
        court=f"courts/{number.court_id}",
        special_code=number.special_code,
        type_code=number.type_code,
        sequence=number.sequence,
        enforcement=number.is_enforcement,
        canonical=number.text,
        type_label=number.type_label,
    )


def case_to_proto(view: CaseView) -> pb.Case:
    if view.rendered is not None:
        return view.rendered  # type: ignore[no-any-return]
    return render_case(view)


def render_case(view: CaseView) -> pb.Case:
    number = CaseNumber(view.year, view.court_code, view.court_id, view.special_code, view.type_code, view.sequence)
    message = pb.Case(
        name=view.name,
        case_number=view.case_number,
        case_number_parts=case_number_parts(number),
        parties=[
            pb.Party(
                role=pb.Party.Role.Value(p.role),
                kind=pb.Party.Kind.Value(p.kind),
                display_name=p.display_name,
                id_number=p.id_number_masked,
            )
            for p in view.parties
        ],
        description=view.description,
        create_time=timestamp(view.create_time),
        etag=f'W/"{view.version}"',
    )
    if view.amount_owed_fen is not None:
        message.amount_owed.CopyFrom(money_from_fen(view.amount_owed_fen))
    _set_state(message, view)
    return message


def _set_state(message: pb.Case, view: CaseView) -> None:
    message.state = pb.Case.State.Value(view.state)
    if view.state == "CLOSED":
        closure = message.closure
        closure.outcome = pb.CaseClosure.Outcome.Value(view.close_outcome) if view.close_outcome else 0
        closure.reason = view.close_reason
        if view.close_time:
            closure.close_time.CopyFrom(timestamp(view.close_time))


def close_command(request: pb.CloseCaseRequest) -> CloseCase:
    return CloseCase(enum_name(pb.CaseClosure.Outcome, request.outcome), request.reason, parse_etag(request.etag))


def register_command(request: pb.CreateCaseRequest) -> RegisterCase:
    case = request.case
    amount = None
    if case.HasField("amount_owed"):
        amount = yuan_of(case.amount_owed, "case.amount_owed")
    return RegisterCase(
        parent=request.parent,
        case_number=case.case_number,
        parties=tuple(
            PartyInput(
                role=enum_name(pb.Party.Role, p.role),
                kind=enum_name(pb.Party.Kind, p.kind),
                display_name=p.display_name,
                id_number=p.id_number,
            )
            for p in case.parties
        ),
        amount_owed=amount,
        currency=case.amount_owed.currency_code if case.HasField("amount_owed") else "CNY",
        description=case.description,
    )

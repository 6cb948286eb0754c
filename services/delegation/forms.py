"""ListMatterKinds and GetMatterKind: the form of each kind of matter, as the contract's MatterKind.

Everything comes from the rules the service applies (delegation/forms.py gathers them): the
details fields from the tables `validate` checks, paths as the request spells them
(`delegation.deposits.amount_fen`, messages.DETAILS_FIELDS); the deadlines of the steps the
service opens (schedule.tracked_steps) from the rule table deadlines are opened with.
"""

from __future__ import annotations

from rogatory.delegation.v1 import delegation_pb2 as pb

from delegation.deadlines import DeadlineRule, RuleTable, Step
from delegation.fields import FieldRule, Format, When
from delegation.forms import MatterForm, matter_form
from delegation.matters import MatterKind
from registry.errors import NotFound
from services.delegation.messages import DETAILS_FIELDS
from services.delegation.schedule import REQUESTING_COURT_STEPS, tracked_steps
from services.plumbing.names import parse_name
from services.plumbing.pagination import offset_page

MATTER_KIND_NAME = "matterKinds/{matter_kind}"
_ACTING = {True: pb.MatterKind.StepDeadline.REQUESTING_COURT, False: pb.MatterKind.StepDeadline.ENTRUSTED_COURT}


def list_matter_kinds(request: pb.ListMatterKindsRequest, rules: RuleTable) -> pb.ListMatterKindsResponse:
    page, token = offset_page(list(MatterKind), request)
    return pb.ListMatterKindsResponse(matter_kinds=[matter_kind_to_proto(kind, rules) for kind in page], next_page_token=token)


def get_matter_kind(request: pb.GetMatterKindRequest, rules: RuleTable) -> pb.MatterKind:
    wanted = parse_name(request.name, MATTER_KIND_NAME)["matter_kind"]
    kind = next((kind for kind in MatterKind if kind.value == wanted), None)
    if kind is None:
        raise NotFound("matter kind", request.name)
    return matter_kind_to_proto(kind, rules)


def matter_kind_to_proto(kind: MatterKind, rules: RuleTable) -> pb.MatterKind:
    form = matter_form(kind)
    details = DETAILS_FIELDS[kind]
    steps = tracked_steps()
    return pb.MatterKind(
        name=f"matterKinds/{kind}",
        kind=pb.Delegation.MatterKind.Value(str(kind)),
        display_name=form.title,
        description=form.description,
        details_field=details,
        detail_fields=[_field(rule, details) for rule in form.fields],
        required_attachments=[pb.Attachment.Kind.Value(str(k)) for k in form.required_attachments],
        optional_attachments=[pb.Attachment.Kind.Value(str(k)) for k in form.optional_attachments],
        max_attachments=form.max_attachments,
        max_attachment_bytes=form.max_attachment_bytes,
        deadlines=[
            _deadline(step_rules.step, step_rules.national, step_rules.provinces, steps[step_rules.step])
            for step_rules in form.deadlines(rules, tuple(steps))
        ],
        receiving_court=_receiving_court(form, details),
    )


def field_path(details: str, name: str) -> str:
    """The request path of a details field, e.g. `delegation.deposits.amount_fen`."""
    return f"delegation.{details}.{name}"


def _field(rule: FieldRule, details: str) -> pb.MatterKind.DetailField:
    message = pb.MatterKind.DetailField(
        field=field_path(details, rule.name),
        label=rule.label,
        value_type=pb.MatterKind.DetailField.ValueType.Value(str(rule.value_type)),
        requirement=pb.MatterKind.DetailField.Requirement.Value(str(rule.requirement)),
        one_of=rule.one_of,
        allowed_values=[member.value for member in rule.values] if rule.values else [],
        max_length=rule.max_length,
        max_items=rule.max_items,
        formats=[_format(fmt, details) for fmt in rule.formats],
    )
    if rule.required_when is not None:
        message.required_when.CopyFrom(_condition(rule.required_when, details))
    if rule.applies_when is not None:
        message.applies_when.CopyFrom(_condition(rule.applies_when, details))
    return message


def _condition(condition: When, details: str) -> pb.MatterKind.Condition:
    return pb.MatterKind.Condition(field=field_path(details, condition.field), values=sorted(condition.values))


def _format(fmt: Format, details: str) -> pb.MatterKind.Format:
    message = pb.MatterKind.Format(name=fmt.name, description=fmt.description, reason=fmt.reason)
    if fmt.only_when is not None:
        message.only_when.CopyFrom(_condition(fmt.only_when, details))
    return message


def _deadline(
    step: Step, national: DeadlineRule, provinces: tuple[DeadlineRule, ...], opened_by: tuple[str, ...]
) -> pb.MatterKind.StepDeadline:
    return pb.MatterKind.StepDeadline(
        step=pb.Deadline.Step.Value(str(step)),
        acting_court=_ACTING[step in REQUESTING_COURT_STEPS],
        opened_by=list(opened_by),
        period=_period(national),
        source=national.source,
        province_rules=[
            pb.MatterKind.StepDeadline.ProvinceRule(province=rule.province or "", period=_period(rule), source=rule.source)
            for rule in provinces
        ],
    )


def _period(rule: DeadlineRule) -> pb.Period:
    return pb.Period(amount=rule.amount, unit=pb.Period.Unit.Value(str(rule.unit)))


def _receiving_court(form: MatterForm, details: str) -> pb.MatterKind.ReceivingCourt:
    return pb.MatterKind.ReceivingCourt(
        place=form.place,
        routable_by_division=True,
        special_courts=[
            pb.MatterKind.SpecialCourt(when=_condition(condition, details), court_kind=str(special))
            for condition, special in form.special_courts
        ],
    )

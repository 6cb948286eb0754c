"""Forms from the contract (issue 17 point 3): what GetMatterKind says a request of each kind
needs is what CreateDelegation's validation accepts and refuses.

For every kind, and every value of each field another field's rule depends on (the property
kind, the measure, the investigation scope), a request is filled in from the form alone (with
sample input per value type and format, as a clerk would type it) and validated exactly as
CreateDelegation validates it (messages.create_command, the domain's create_delegation, the
request's field paths). Then each field is left out, given where it does not apply, made too
long or malformed, and each required attachment is dropped: the violations must be the ones
the form announces, and nothing else. The form's fields must also be the details message's
fields, and `google.api.field_behavior = REQUIRED` in the protos must mark exactly the fields
the form says are always required.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from google.api import field_behavior_pb2
from rogatory.delegation.v1 import delegation_pb2 as pb

from delegation.deadlines import RuleTable, Step
from delegation.matters import MatterKind, create_delegation
from registry.courts import CourtCatalog
from registry.errors import InvalidArgument, NotFound
from services.delegation import messages as m
from services.delegation.forms import get_matter_kind, list_matter_kinds
from services.delegation.schedule import DeadlineBook
from services.plumbing.auth import Principal, PrincipalKind
from services.tools import forms_doc
from tests.unit.test_page_tokens import as_caller

Field = pb.MatterKind.DetailField
NOW = datetime(2023, 9, 15, 2, 0, tzinfo=UTC)
COURTS = CourtCatalog.default()
CASE = "courts/gd0112/cases/2020-enf-1"
COURT = Principal(PrincipalKind.COURT, "zj0326")

#: What a clerk would type, per value type and per format (a new format needs a sample here).
SAMPLES = {Field.TEXT: "中牟县青年路 8 号", Field.AMOUNT_FEN: 700_000_000, Field.PERCENT: "12.5", Field.PHONE: "13812345678"}
FORMAT_SAMPLES = {
    "ACCOUNT_NUMBER": "6222021001123456789",
    "USCC": "91110000600037341L",
    "REAL_ESTATE_UNIT_NUMBER": "410122001001GB00001F00030201",
    "PLATE": "浙C12345",
    "VIN": "LSVAM4187C2184847",
    "AIRCRAFT_REGISTRATION_MARK": "B-1234",
    "RESIDENT_ID_NUMBER": "11010519491231002X",
}
MALFORMED = "0"  # matches no format


def forms() -> list[pb.MatterKind]:
    return list(list_matter_kinds(pb.ListMatterKindsRequest(), RuleTable.default()).matter_kinds)


FORMS = forms()


def short(field: Field) -> str:
    return field.field.rsplit(".", 1)[1]


# --- filling a request in from the form --------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One choice of the values the form's conditions look at, e.g. property_kind = SHIP."""

    form: pb.MatterKind
    choice: tuple[tuple[str, str], ...]  # (field path, value)

    @property
    def label(self) -> str:
        return self.form.details_field + "".join(f"-{v}" for _, v in self.choice)

    def holds(self, condition: pb.MatterKind.Condition) -> bool:
        return dict(self.choice).get(condition.field) in condition.values

    def applies(self, field: Field) -> bool:
        return not field.HasField("applies_when") or self.holds(field.applies_when)

    def required(self, field: Field) -> bool:
        if field.requirement == Field.REQUIRED:
            return True
        return field.requirement == Field.CONDITIONAL and field.HasField("required_when") and self.holds(field.required_when)


def scenarios_of(form: pb.MatterKind) -> Iterator[Scenario]:
    """Every choice of values for the fields the form's conditions look at."""
    looked_at = sorted({c.field for f in form.detail_fields for c in _conditions(f)})
    by_path = {f.field: f for f in form.detail_fields}
    choices = [[(path, value) for value in by_path[path].allowed_values] for path in looked_at]
    for choice in itertools.product(*choices):
        yield Scenario(form, tuple(choice))


def scenarios() -> Iterator[Scenario]:
    for form in FORMS:
        yield from scenarios_of(form)


def _conditions(field: Field) -> list[pb.MatterKind.Condition]:
    found = [c for c in (field.required_when, field.applies_when) if c.field]
    return found + [f.only_when for f in field.formats if f.HasField("only_when")]


SCENARIOS = list(scenarios())


def sample(field: Field, scenario: Scenario) -> Any:
    chosen = dict(scenario.choice)
    if field.field in chosen:
        return [chosen[field.field]] if field.value_type == Field.ENUM_LIST else chosen[field.field]
    if field.value_type == Field.ENUM:
        return field.allowed_values[0]
    if field.value_type == Field.ENUM_LIST:
        return [field.allowed_values[0]]
    if field.value_type == Field.TEXT_LIST:
        return ["执行通知书"]
    formats = [f for f in field.formats if not f.HasField("only_when") or scenario.holds(f.only_when)]
    if formats:
        return FORMAT_SAMPLES[formats[0].name]
    return SAMPLES[field.value_type]


def request_for(scenario: Scenario, values: dict[str, Any], attachments: list[int] | None = None) -> pb.CreateDelegationRequest:
    form = scenario.form
    delegation = pb.Delegation(
        case=CASE,
        entrusted_court="courts/ha0122",
        matter_kind=form.kind,
        requesting_officer=pb.Officer(display_name="陈法官", phone="020-82212345"),
    )
    details = getattr(delegation, form.details_field)
    details.SetInParent()
    for path, value in values.items():
        name = path.rsplit(".", 1)[1]
        descriptor = details.DESCRIPTOR.fields_by_name[name]
        if isinstance(value, list):
            getattr(details, name).extend(value)
        elif descriptor.enum_type is not None:
            setattr(
                details,
                name,
                descriptor.enum_type.values_by_name[value].number if value in descriptor.enum_type.values_by_name else 99,
            )
        else:
            setattr(details, name, value)
    kinds = form.required_attachments if attachments is None else attachments
    for i, kind in enumerate(kinds):
        delegation.attachments.add(kind=kind, name=f"附件{i}.pdf", size_bytes=1024, sha256=f"{i:02x}" * 32)
    return pb.CreateDelegationRequest(parent="courts/gd0112", delegation=delegation)


def filled(scenario: Scenario) -> dict[str, Any]:
    """Every field that applies, filled in."""
    return {f.field: sample(f, scenario) for f in scenario.form.detail_fields if scenario.applies(f)}


def violations(request: pb.CreateDelegationRequest) -> set[tuple[str, str]]:
    """What CreateDelegation's validation says of `request`, on the request's field paths."""
    try:
        with m.proto_paths(m.create_paths(request)):
            create_delegation(m.create_command(request), COURTS, "gd0112", NOW, delegation_id="form-test")
    except InvalidArgument as error:
        return {(v.field, v.reason) for v in error.violations}
    return set()


# --- the form and the validation agree ---------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.label)
def test_a_request_filled_in_from_the_form_is_accepted(scenario: Scenario) -> None:
    assert violations(request_for(scenario, filled(scenario))) == set()
    everything = [*scenario.form.required_attachments, *scenario.form.optional_attachments]
    assert violations(request_for(scenario, filled(scenario), everything)) == set()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.label)
def test_leaving_a_field_out_gets_what_the_form_says(scenario: Scenario) -> None:
    values = filled(scenario)
    for field in scenario.form.detail_fields:
        if not scenario.applies(field) or field.field in dict(scenario.choice) and field.value_type == Field.ENUM_LIST:
            continue
        without = {path: value for path, value in values.items() if path != field.field}
        expected = {(field.field, "REQUIRED")} if scenario.required(field) else set()
        assert violations(request_for(scenario, without)) == expected, field.field


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.label)
def test_one_field_of_each_group_is_required(scenario: Scenario) -> None:
    groups: dict[str, list[Field]] = {}
    for field in scenario.form.detail_fields:
        if field.one_of and scenario.applies(field):
            groups.setdefault(field.one_of, []).append(field)
    for members in groups.values():
        names = {f.field for f in members}
        none_given = {path: value for path, value in filled(scenario).items() if path not in names}
        assert violations(request_for(scenario, none_given)) == {(members[0].field, "REQUIRED")}
        for keep in members:
            one_given = {**none_given, keep.field: sample(keep, scenario)}
            assert violations(request_for(scenario, one_given)) == set(), keep.field


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.label)
def test_a_field_given_where_it_does_not_apply_is_refused(scenario: Scenario) -> None:
    for field in scenario.form.detail_fields:
        if scenario.applies(field):
            continue
        given = {
            **filled(scenario),
            field.field: sample(field, scenario) if not field.formats else FORMAT_SAMPLES[field.formats[0].name],
        }
        assert violations(request_for(scenario, given)) == {(field.field, "NOT_APPLICABLE")}, field.field


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.label)
def test_values_lengths_and_formats_are_the_forms(scenario: Scenario) -> None:
    for field in scenario.form.detail_fields:
        if not scenario.applies(field):
            continue
        values = filled(scenario)
        if field.value_type == Field.ENUM and field.field not in dict(scenario.choice):
            for value in field.allowed_values:
                assert violations(request_for(scenario, {**values, field.field: value})) == set(), (field.field, value)
            assert violations(request_for(scenario, {**values, field.field: "NOT_A_VALUE"})) == {(field.field, "BAD_VALUE")}
        if field.value_type == Field.ENUM_LIST:
            refused = violations(request_for(scenario, {**values, field.field: ["NOT_A_VALUE"]}))
            assert (f"{field.field}[0]", "BAD_VALUE") in refused
            too_many = violations(request_for(scenario, {**values, field.field: list(field.allowed_values) * 2}))
            assert too_many == {(field.field, "TOO_MANY")} and len(field.allowed_values) == field.max_items
        if field.value_type == Field.TEXT:
            longest = "字" * field.max_length
            ok = {(f, r) for f, r in violations(request_for(scenario, {**values, field.field: longest})) if f == field.field}
            assert ok <= {(field.field, f.reason) for f in field.formats}, field.field  # a format may still refuse it
            assert violations(request_for(scenario, {**values, field.field: longest + "字"})) == {(field.field, "TOO_LONG")}
        if field.value_type == Field.TEXT_LIST:
            too_long = violations(request_for(scenario, {**values, field.field: ["字" * (field.max_length + 1)]}))
            assert too_long == {(f"{field.field}[0]", "TOO_LONG")}
            assert violations(request_for(scenario, {**values, field.field: ["x"] * (field.max_items + 1)})) == {
                (field.field, "TOO_MANY")
            }
        for fmt in field.formats:
            if fmt.HasField("only_when") and not scenario.holds(fmt.only_when):
                continue
            assert violations(request_for(scenario, {**values, field.field: MALFORMED})) == {(field.field, fmt.reason)}


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.details_field)
def test_each_required_attachment_is_required(form: pb.MatterKind) -> None:
    scenario = next(s for s in SCENARIOS if s.form is form)
    for missing in form.required_attachments:
        others = [k for k in form.required_attachments if k != missing]
        assert violations(request_for(scenario, filled(scenario), others)) == {("delegation.attachments", "MISSING_ATTACHMENT")}


# --- the form, the protos and the rule table ---------------------------------------------------------


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.details_field)
def test_the_form_lists_every_field_of_the_details_message_and_the_protos_mark_the_required_ones(form: pb.MatterKind) -> None:
    message = pb.Delegation.DESCRIPTOR.fields_by_name[form.details_field].message_type
    assert [short(f) for f in form.detail_fields] == [f.name for f in message.fields]
    for field in form.detail_fields:
        behaviors = message.fields_by_name[short(field)].GetOptions().Extensions[field_behavior_pb2.field_behavior]
        always = field.requirement == Field.REQUIRED and not field.HasField("applies_when")
        assert (field_behavior_pb2.REQUIRED in behaviors) == always, field.field
        descriptor = message.fields_by_name[short(field)]
        if descriptor.enum_type is not None:
            assert list(field.allowed_values) == [v.name for v in descriptor.enum_type.values if v.number], field.field


def test_every_kind_is_listed_once_in_enum_order_and_pages() -> None:
    assert [f.kind for f in FORMS] == [v.number for v in pb.Delegation.MatterKind.DESCRIPTOR.values if v.number]
    assert [f.name for f in FORMS] == [f"matterKinds/{kind}" for kind in MatterKind]
    first_three = pb.ListMatterKindsRequest(page_size=3)
    first = as_caller(COURT, lambda: list_matter_kinds(first_three, RuleTable.default()))
    assert [f.name for f in first.matter_kinds] == [f.name for f in FORMS[:3]] and first.next_page_token
    rest = pb.ListMatterKindsRequest(page_size=10, page_token=first.next_page_token)
    second = as_caller(COURT, lambda: list_matter_kinds(rest, RuleTable.default()))
    assert [f.name for f in second.matter_kinds] == [f.name for f in FORMS[3:]] and not second.next_page_token


def test_get_matter_kind_by_name() -> None:
    deposits = get_matter_kind(pb.GetMatterKindRequest(name="matterKinds/DEPOSITS"), RuleTable.default())
    assert deposits == FORMS[0] and deposits.details_field == "deposits"
    with pytest.raises(NotFound):
        get_matter_kind(pb.GetMatterKindRequest(name="matterKinds/GOLD"), RuleTable.default())


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.details_field)
def test_the_deadlines_are_the_ones_the_service_opens(form: pb.MatterKind) -> None:
    """Each step's national rule is the one a matter of this kind gets from a court of a
    province without its own rule; province rules are listed where a province has one."""
    book = DeadlineBook.default()
    kind = MatterKind(pb.Delegation.MatterKind.Name(form.kind))
    assert [pb.Deadline.Step.Name(d.step) for d in form.deadlines] == ["ACKNOWLEDGE", "START", "FINISH", "SUPPLEMENT"]
    for deadline in form.deadlines:
        rule = book.rule_for(kind, Step(pb.Deadline.Step.Name(deadline.step)), "ha0122")
        assert (deadline.period.amount, pb.Period.Unit.Name(deadline.period.unit), deadline.source) == (
            rule.amount,
            str(rule.unit),
            rule.source,
        )
    supplement = form.deadlines[-1]
    assert supplement.acting_court == pb.MatterKind.StepDeadline.REQUESTING_COURT
    assert list(supplement.opened_by) == ["RETURN_FOR_SUPPLEMENT"]


def test_a_province_rule_shows_on_the_forms_it_applies_to() -> None:
    rules = RuleTable.default().with_overrides_from_text(
        '[[provinces."豫"]]\nkind = "DEPOSITS"\nstep = "FINISH"\namount = 5\nunit = "WORKING_DAY"\nsource = "豫 rule"\n'
    )
    deposits = get_matter_kind(pb.GetMatterKindRequest(name="matterKinds/DEPOSITS"), rules)
    finish = next(d for d in deposits.deadlines if d.step == pb.Deadline.FINISH)
    assert [(r.province, r.period.amount, r.source) for r in finish.province_rules] == [("豫", 5, "豫 rule")]
    equity = get_matter_kind(pb.GetMatterKindRequest(name="matterKinds/EQUITY"), rules)
    assert not any(d.province_rules for d in equity.deadlines)


def test_ships_are_routed_to_the_maritime_court() -> None:
    registered = next(f for f in FORMS if f.details_field == "registered_property")
    [special] = registered.receiving_court.special_courts
    assert (special.when.field, list(special.when.values), special.court_kind) == (
        "delegation.registered_property.property_kind",
        ["SHIP"],
        "MARITIME",
    )
    assert all(f.receiving_court.place and f.receiving_court.routable_by_division for f in FORMS)


def test_the_forms_in_docs_delegation_md_are_the_services() -> None:
    text = forms_doc.DOC.read_text(encoding="utf-8")
    assert forms_doc.current_section(text) == forms_doc.render(), "run: python -m services.tools.forms_doc --write"

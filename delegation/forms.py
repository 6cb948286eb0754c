"""What a form for each kind of matter needs, read from the rules that validate it.

`matter_form(kind, rules)` gathers, for one `MatterKind`: its details fields with their rules
(the `FIELDS` table `validate` checks, delegation/fields.py), the attachments it must and may
carry (`REQUIRED_ATTACHMENTS`, `check_attachments`), the deadline rules of its steps (the
`RuleTable` the service opens deadlines with) and which court receives it (the routing of
`route_entrusted_court`). Nothing here is a second copy of a rule: a court system that builds
its form from this builds one the validation accepts (tests/unit/test_matter_forms.py).

Pure domain.
"""

from __future__ import annotations

from dataclasses import dataclass

from delegation.deadlines import DeadlineRule, RuleTable, Step
from delegation.details import (
    DETAILS_TYPES,
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    REQUIRED_ATTACHMENTS,
    AttachmentKind,
    MatterKind,
)
from delegation.fields import FieldRule, When, when
from delegation.matters import SPECIAL_COURT_FOR_PROPERTY
from registry.courts import SpecialKind

#: Courts' own names of the kinds (DOMAIN.md, 事项委托) and what each asks, in English.
TITLES: dict[MatterKind, tuple[str, str]] = {
    MatterKind.DEPOSITS: (
        "冻结、续冻、解冻、扣划存款、理财产品",
        "Freeze, renew a freeze of, unfreeze or deduct bank deposits and wealth products.",
    ),
    MatterKind.EQUITY: (
        "公示冻结、续冻、解冻股权及其他投资权益",
        "Publicise-freeze, renew or unfreeze equity and other investment rights.",
    ),
    MatterKind.REAL_ESTATE_OR_REGISTERED_MOVABLES: (
        "查封、续封、解封、过户不动产和需要登记的动产",
        "Seal, renew a seal of, unseal or transfer real estate or a registered movable (vehicle, ship, aircraft).",
    ),
    MatterKind.PROPERTY_INVESTIGATION: ("调查被执行人财产情况", "Investigate the debtor's property."),
    MatterKind.SERVICE_OF_DOCUMENTS: ("送达法律文书", "Serve legal documents."),
    MatterKind.CONTROL_MEASURES: (
        "对被执行人采取控制措施",
        "Take control measures on a located debtor (detention, compulsory summons).",
    ),
    MatterKind.OTHER: ("其他事项", "Another matter listed by the platform."),
}

#: Which court a matter goes to: the court of the place where it is to be done.
PLACES: dict[MatterKind, str] = {
    MatterKind.DEPOSITS: "the court of the place where the bank branch holding the account is",
    MatterKind.EQUITY: "the court of the place where the company is registered",
    MatterKind.REAL_ESTATE_OR_REGISTERED_MOVABLES: (
        "the court of the place where the real estate is, or where the vehicle, ship or aircraft is registered"
    ),
    MatterKind.PROPERTY_INVESTIGATION: "the court of the place where the debtor or the property is",
    MatterKind.SERVICE_OF_DOCUMENTS: "the court of the place where the addressee is served",
    MatterKind.CONTROL_MEASURES: "the court of the place where the debtor was located",
    MatterKind.OTHER: "the court of the place where the matter is to be done",
}


@dataclass(frozen=True)
class StepRules:
    """The national rule of one step of a kind of matter and the provinces' own."""

    step: Step
    national: DeadlineRule
    provinces: tuple[DeadlineRule, ...]


@dataclass(frozen=True)
class MatterForm:
    kind: MatterKind
    title: str
    description: str
    fields: tuple[FieldRule, ...]
    required_attachments: tuple[AttachmentKind, ...]
    optional_attachments: tuple[AttachmentKind, ...]
    max_attachments: int
    max_attachment_bytes: int
    place: str
    special_courts: tuple[tuple[When, SpecialKind], ...]

    def deadlines(self, rules: RuleTable, steps: tuple[Step, ...]) -> list[StepRules]:
        """The rules of `steps` for this kind: national, and each province that has its own."""
        return [StepRules(step, rules.rule_for(self.kind, step), tuple(rules.province_rules(self.kind, step))) for step in steps]


def matter_form(kind: MatterKind) -> MatterForm:
    required = REQUIRED_ATTACHMENTS[kind]
    title, description = TITLES[kind]
    return MatterForm(
        kind=kind,
        title=title,
        description=description,
        fields=DETAILS_TYPES[kind].FIELDS,
        required_attachments=tuple(k for k in AttachmentKind if k in required),
        optional_attachments=tuple(k for k in AttachmentKind if k not in required),  # check_attachments takes any kind
        max_attachments=MAX_ATTACHMENTS,
        max_attachment_bytes=MAX_ATTACHMENT_BYTES,
        place=PLACES[kind],
        special_courts=_special_courts(kind),
    )


def _special_courts(kind: MatterKind) -> tuple[tuple[When, SpecialKind], ...]:
    if kind is not MatterKind.REAL_ESTATE_OR_REGISTERED_MOVABLES:
        return ()  # special_court_needed looks at registered property only
    return tuple((when("property_kind", prop), special) for prop, special in SPECIAL_COURT_FOR_PROPERTY.items())

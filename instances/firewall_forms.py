"""The firewall page's forms: on/off and the default policies, and the rules as one formset
(a row per rule, in the order given; empty rows are left out). The services check again."""

from __future__ import annotations

from django import forms

from instances.firewall_rules import LABELS, Rule, RuleInvalid, check_rule
from instances.models import FirewallRule
from instances.models.firewall import Policy

EXTRA_ROWS = 2


class FirewallSettingsForm(forms.Form):
    enabled = forms.BooleanField(
        label="Switch the firewall on (filter with my rules)", required=False
    )
    policy_in = forms.ChoiceField(label="Other incoming traffic", choices=Policy.choices)
    policy_out = forms.ChoiceField(label="Other outgoing traffic", choices=Policy.choices)


class RuleForm(forms.Form):
    order = forms.IntegerField(label="Order", min_value=1, max_value=999, required=False)
    direction = forms.ChoiceField(label=LABELS["direction"], choices=FirewallRule.Direction.choices)
    action = forms.ChoiceField(label=LABELS["action"], choices=Policy.choices)
    protocol = forms.ChoiceField(
        label=LABELS["protocol"], choices=FirewallRule.Protocol.choices, required=False
    )
    port = forms.CharField(label=LABELS["port"], required=False, max_length=20)
    source = forms.CharField(label=LABELS["source"], required=False, max_length=64)
    destination = forms.CharField(label=LABELS["destination"], required=False, max_length=64)
    comment = forms.CharField(label=LABELS["comment"], required=False, max_length=200)
    delete = forms.BooleanField(label="Delete", required=False)

    FIELDS = ("direction", "action", "protocol", "port", "source", "destination", "comment")
    # What a new, empty row holds: left out unless something else is typed into it.
    BLANK = {"direction": "in", "action": "ACCEPT"}

    def is_blank(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return all(
            not data.get(name) or data.get(name) == self.BLANK.get(name) for name in self.FIELDS
        )

    def clean(self):
        data = super().clean()
        if data.get("delete") or self.is_blank() or self.errors:
            return data
        try:
            rule = check_rule(**{name: data.get(name) or "" for name in self.FIELDS})
        except RuleInvalid as exc:
            for field, message in exc.errors.items():
                self.add_error(field, message)
        else:
            data["rule"] = rule
        return data


RuleFormSet = forms.formset_factory(RuleForm, extra=EXTRA_ROWS, max_num=60, absolute_max=60)


def initial_rules(rules: list[Rule]) -> list[dict]:
    return [{"order": n, **rule.as_dict()} for n, rule in enumerate(rules, 1)]


def rules_in_order(formset) -> list[dict]:
    """The rules of a valid formset in the order given (ties keep the page's order)."""
    kept = [
        (form.cleaned_data.get("order") or 1000 + n, n, form.cleaned_data["rule"])
        for n, form in enumerate(formset.forms)
        if form.cleaned_data.get("rule") is not None
    ]
    return [rule.as_dict() for _order, _n, rule in sorted(kept, key=lambda item: item[:2])]


def first_errors(formset) -> str:
    """ "Rule 2, port: …" for the first wrong field, to say at the top of the page."""
    for number, form in enumerate(formset.forms, 1):
        for field, errors in form.errors.items():
            label = LABELS.get(field, field).lower()
            return f"Nothing was changed: rule {number}, {label}: {errors[0]}"
    return ""

from __future__ import annotations

from django import forms

from accounts.models import SSHKey, User
from billing.models import Plan
from instances import selectors as instance_selectors
from instances.models import OSImage


class PlanChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, plan: Plan) -> str:
        return f"{plan.get_family_display()} · {plan.name} — {plan.price}/month excl. VAT"


class KeyChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, key: SSHKey) -> str:
        return f"{key.name} ({key.key_type}, {key.fingerprint})"


class OrderForm(forms.Form):
    """The order form: every choice is limited to rows this customer may pick.

    Amounts are not fields: the server computes them from the plan and the customer's profile.
    """

    plan = PlanChoiceField(
        label="Size", queryset=Plan.objects.none(), empty_label=None, widget=forms.RadioSelect
    )
    location = forms.ModelChoiceField(queryset=None, empty_label=None, widget=forms.RadioSelect)
    os_image = forms.ModelChoiceField(
        label="Operating system", queryset=OSImage.objects.none(), empty_label=None
    )
    hostname = forms.CharField(
        max_length=63,
        help_text="Lower-case letters, digits and hyphens, e.g. web-1.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    ssh_keys = KeyChoiceField(
        label="SSH keys",
        queryset=SSHKey.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    generate_password = forms.BooleanField(
        label="Generate a root password (shown to you once)", required=False
    )

    def __init__(self, *args, owner: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = Plan.objects.on_sale()
        self.fields["location"].queryset = instance_selectors.orderable_locations()
        self.fields["os_image"].queryset = OSImage.objects.filter(active=True).order_by(
            "display_order", "name"
        )
        keys = SSHKey.objects.filter(owner=owner).order_by("-created_at", "-id")
        self.fields["ssh_keys"].queryset = keys
        if not self.is_bound:
            self.initial.setdefault("os_image", self.fields["os_image"].queryset.first())
            newest = keys.first()  # the key just added is the one most likely wanted
            self.initial.setdefault("ssh_keys", [newest.pk] if newest else [])
            self.initial.setdefault("generate_password", newest is None)

    def clean_hostname(self) -> str:
        return self.cleaned_data["hostname"].strip().lower()

    def clean(self):
        cleaned = super().clean()
        wants_access = cleaned.get("ssh_keys") or cleaned.get("generate_password")
        if not wants_access and "ssh_keys" not in self.errors:
            self.add_error("ssh_keys", "Choose at least one SSH key or ask for a root password.")
        return cleaned

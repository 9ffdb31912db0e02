"""Forms of the server page: reinstall, password reset, rename. Services check everything again."""

from __future__ import annotations

from django import forms

from accounts.models import SSHKey
from instances import selectors
from instances.models import Instance, OSImage


class KeyChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, key: SSHKey) -> str:
        return f"{key.name} ({key.key_type}, {key.fingerprint})"


class ReinstallForm(forms.Form):
    image = forms.ModelChoiceField(
        label="Operating system", queryset=OSImage.objects.none(), empty_label=None
    )
    ssh_keys = KeyChoiceField(
        label="SSH keys", queryset=SSHKey.objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
    )  # fmt: skip
    generate_password = forms.BooleanField(
        label="Generate a password (shown to you once)", required=False
    )
    confirm_hostname = forms.CharField(
        label="Type the server's name to confirm",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args, instance: Instance, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance = instance
        self.fields["image"].queryset = selectors.images_for_location(instance.location)
        keys = SSHKey.objects.filter(owner=instance.owner_id).order_by("-created_at", "-id")
        self.fields["ssh_keys"].queryset = keys
        if not self.is_bound:
            self.initial.setdefault("image", instance.os_image_id)
            newest = keys.first()
            self.initial.setdefault("ssh_keys", [newest.pk] if newest else [])
            self.initial.setdefault("generate_password", newest is None)

    def clean_confirm_hostname(self) -> str:
        typed = self.cleaned_data["confirm_hostname"].strip()
        if typed != self.instance.hostname:
            raise forms.ValidationError(f"Type {self.instance.hostname} exactly to confirm.")
        return typed

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("ssh_keys") and not cleaned.get("generate_password"):
            self.add_error("ssh_keys", "Choose at least one SSH key or ask for a password.")
        return cleaned


class PasswordResetForm(forms.Form):
    allow_reboot = forms.BooleanField(
        label=(
            "If the guest agent does not answer, reboot the server and set the password "
            "through cloud-init"
        ),
        required=False,
    )


class RenameForm(forms.Form):
    hostname = forms.CharField(
        label="New name",
        max_length=63,
        help_text="Lower-case letters, digits and hyphens, e.g. web-2.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class RebootPlanForm(forms.Form):
    at = forms.DateTimeField(
        label="Reboot at",
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": "Pick a date and time, e.g. tonight at 03:00."},
    )

from __future__ import annotations

from django import forms

from accounts.models import CustomerProfile, SSHKey
from accounts.sshkeys import InvalidSSHKey, parse_public_key
from accounts.vat import InvalidVATID, validate_vat_id


class ProfileForm(forms.ModelForm):
    class Meta:
        model = CustomerProfile
        fields = [
            "full_name",
            "company",
            "address_line1",
            "address_line2",
            "postal_code",
            "city",
            "country",
            "vat_id",
            "phone",
        ]
        widgets = {
            "full_name": forms.TextInput(attrs={"autocomplete": "name"}),
            "company": forms.TextInput(attrs={"autocomplete": "organization"}),
            "address_line1": forms.TextInput(attrs={"autocomplete": "address-line1"}),
            "address_line2": forms.TextInput(attrs={"autocomplete": "address-line2"}),
            "postal_code": forms.TextInput(attrs={"autocomplete": "postal-code"}),
            "city": forms.TextInput(attrs={"autocomplete": "address-level2"}),
            "phone": forms.TextInput(attrs={"autocomplete": "tel", "type": "tel"}),
        }

    def clean_phone(self) -> str:
        phone = self.cleaned_data["phone"].strip()
        digits = [c for c in phone if c.isdigit()]
        if not 6 <= len(digits) <= 15 or any(c not in "0123456789+ -()/." for c in phone):
            raise forms.ValidationError(
                "Enter a phone number with country code, e.g. +49 30 1234567."
            )
        return phone

    def clean(self):
        cleaned = super().clean()
        vat_id = (cleaned.get("vat_id") or "").strip()
        country = cleaned.get("country")
        if vat_id and country:
            try:
                cleaned["vat_id"] = validate_vat_id(vat_id, str(country))
            except InvalidVATID as exc:
                self.add_error("vat_id", str(exc))
        if vat_id and not (cleaned.get("company") or "").strip():
            self.add_error("company", "A VAT ID belongs to a business: enter the company name.")
        return cleaned


class SSHKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        required=False,
        help_text="Optional; defaults to the key's comment.",
    )
    public_key = forms.CharField(
        label="Public key",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off"}),
        help_text="The contents of your .pub file, e.g. ~/.ssh/id_ed25519.pub.",
    )

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner

    def clean_public_key(self) -> str:
        text = self.cleaned_data["public_key"]
        try:
            parsed = parse_public_key(text)
        except InvalidSSHKey as exc:
            raise forms.ValidationError(str(exc)) from None
        if SSHKey.objects.filter(owner=self.owner, fingerprint=parsed.fingerprint).exists():
            raise forms.ValidationError(f"You already added this key ({parsed.fingerprint}).")
        return text

from __future__ import annotations

import datetime

from django import forms
from django.utils import timezone

from api.models import APIToken


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What will use it, e.g. “terraform” or “backup script”."
    )
    scope = forms.ChoiceField(
        choices=APIToken.Scope.choices,
        initial=APIToken.Scope.READ,
        widget=forms.RadioSelect,
        help_text="Read only: see servers, graphs and orders. Read and write: also order, "
        "power, reinstall and upgrade.",
    )
    expires_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional: the token stops working at the start of this day (UTC).",
    )

    def clean_expires_on(self):
        day = self.cleaned_data.get("expires_on")
        if day is not None and day <= timezone.now().date():
            raise forms.ValidationError("Pick a day after today, or leave it empty.")
        return day

    def expires_at(self) -> datetime.datetime | None:
        day = self.cleaned_data.get("expires_on")
        return datetime.datetime.combine(day, datetime.time(), datetime.UTC) if day else None

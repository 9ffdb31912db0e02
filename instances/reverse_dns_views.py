"""The server page's reverse DNS: the form behind each address's card.

A change that cannot be made (not the server's address, not a host name, a name that does not
resolve to the address) comes back on this page with the message at its field and what was
typed kept; one that can starts a reverse DNS change, whose step shows on the server page.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from instances import reverse_dns, selectors
from instances.models import InstanceEvent
from instances.state import InstanceError


class ReverseDnsForm(forms.Form):
    address = forms.CharField(label="Address", max_length=45)
    ptr = forms.CharField(
        label="Reverse DNS name",
        max_length=253,
        required=False,
        help_text="A host name that resolves to the address, e.g. mail.example.com. "
        "Empty: the default name (or none, for an address without one).",
    )


@login_required
@require_http_methods(["GET", "POST"])
def server_reverse_dns(request, instance_id: int):
    instance = selectors.server_of(request.user, instance_id)
    form = None
    if request.method == "POST":
        form = ReverseDnsForm(request.POST)
        if form.is_valid():
            address, ptr = form.cleaned_data["address"], form.cleaned_data["ptr"]
            try:
                reverse_dns.reverse_dns_request(
                    instance=instance,
                    address=address,
                    ptr=ptr,
                    actor=InstanceEvent.Actor.CUSTOMER,
                    actor_user=request.user,
                )
            except reverse_dns.ReverseDnsError as error:
                form.add_error(error.field, str(error))
            except InstanceError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, f"Reverse DNS change of {address.strip()} started.")
                return redirect(reverse("instances:detail", args=[instance.pk]) + "#reverse-dns")
    panel = reverse_dns.reverse_dns_panel(instance, None)
    if request.method == "GET":
        address = request.GET.get("address", "")
        shown = {card.address: card.ptr for card in panel.cards} if panel else {}
        form = ReverseDnsForm(initial={"address": address, "ptr": shown.get(address, "")})
    return render(
        request, "instances/reverse_dns.html", {"instance": instance, "form": form, "panel": panel}
    )

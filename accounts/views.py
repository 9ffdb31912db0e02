from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts import services, vat
from accounts.forms import ProfileForm, SSHKeyForm
from accounts.models import SSHKey
from accounts.sshkeys import InvalidSSHKey


@login_required
def overview(request):
    return render(
        request,
        "accounts/overview.html",
        {
            "profile": services.profile_for(request.user),
            "ssh_key_count": request.user.ssh_keys.count(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    instance = services.profile_for(request.user)
    previous_vat_id = instance.vat_id if instance else ""
    form = ProfileForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        saved.user = request.user
        if instance is None:
            saved.save()
        else:  # only what the form edits: beat may be writing the VAT ID's status meanwhile
            saved.save(update_fields=[*ProfileForm.Meta.fields, "updated_at"])
        vat_id_changed = saved.vat_id != previous_vat_id
        if vat_id_changed:  # asks VIES now, briefly; beat asks again if it does not answer
            saved = vat.vat_id_changed(profile_id=saved.pk)
        _say_saved(request, saved, vat_id_changed=vat_id_changed)
        next_url = request.POST.get("next", "")
        if url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return redirect(next_url)
        return redirect("accounts:overview")
    saved_profile = services.profile_for(request.user) if request.method == "POST" else instance
    return render(
        request,
        "accounts/profile.html",
        {
            "form": form,
            # As saved (the form's instance holds what was just typed, maybe refused).
            "profile": saved_profile,
            "reverse_charge": bool(saved_profile) and vat.reverse_charge_applies(saved_profile),
            "next": request.GET.get("next", request.POST.get("next", "")),
        },
    )


def _say_saved(request, profile, *, vat_id_changed: bool) -> None:
    """What the save means for the customer's invoices, when the VAT ID changed."""
    Status = profile.VatIdStatus
    if not vat_id_changed or not profile.vat_id:
        messages.success(request, "Your profile is saved.")
    elif profile.vat_id_status == Status.CONFIRMED:
        messages.success(
            request,
            f"Your profile is saved. VIES confirmed the VAT ID {profile.vat_id}"
            + (f" ({profile.vat_id_name})" if profile.vat_id_name else "")
            + (
                ": your invoices are reverse-charged."
                if vat.reverse_charge_applies(profile)
                else "."
            ),
        )
    elif profile.vat_id_status == Status.INVALID:
        messages.warning(
            request,
            f"Your profile is saved, but VIES says {profile.vat_id} is not a valid VAT ID, so "
            "VAT is charged. Check the number against your VAT registration.",
        )
    else:
        messages.warning(
            request,
            f"Your profile is saved. VIES, the EU's VAT ID service, could not be reached to "
            f"confirm {profile.vat_id}; until it does, VAT is charged. We ask VIES again "
            "automatically.",
        )


@login_required
@require_http_methods(["GET", "POST"])
def ssh_keys(request):
    form = SSHKeyForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            key = services.sshkey_add(
                owner=request.user,
                name=form.cleaned_data["name"],
                public_key=form.cleaned_data["public_key"],
            )
        except (InvalidSSHKey, services.AccountError) as exc:
            form.add_error("public_key", str(exc))
        else:
            messages.success(request, f"Key “{key.name}” added ({key.fingerprint}).")
            return redirect("accounts:ssh_keys")
    keys = SSHKey.objects.filter(owner=request.user)
    return render(request, "accounts/ssh_keys.html", {"form": form, "keys": keys})


@login_required
@require_POST
def ssh_key_delete(request, key_id: int):
    try:
        key = services.sshkey_delete(owner=request.user, key_id=key_id)
    except SSHKey.DoesNotExist:
        raise Http404("No such key.") from None
    messages.success(request, f"Key “{key.name}” deleted. Servers that already have it keep it.")
    return redirect("accounts:ssh_keys")

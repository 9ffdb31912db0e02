from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts import services
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
    form = ProfileForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        form.instance.user = request.user
        form.save()
        messages.success(request, "Your profile is saved.")
        next_url = request.POST.get("next", "")
        if url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return redirect(next_url)
        return redirect("accounts:overview")
    return render(
        request,
        "accounts/profile.html",
        {"form": form, "next": request.GET.get("next", request.POST.get("next", ""))},
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

"""The account's API tokens page: make one (its secret shown once), see when each was last
used, revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from api import tokens
from api.forms import TokenForm


@login_required
@require_http_methods(["GET", "POST"])
@never_cache
def tokens_page(request):
    form = TokenForm(request.POST or None)
    created = secret = None
    if request.method == "POST" and form.is_valid():
        try:
            created, secret = tokens.token_create(
                owner=request.user,
                name=form.cleaned_data["name"],
                scope=form.cleaned_data["scope"],
                expires_at=form.expires_at(),
            )
        except tokens.TokenError as error:
            form.add_error(error.field if error.field in form.fields else None, str(error))
        else:
            form = TokenForm()  # the secret is shown in this answer only: not a redirect
    return render(
        request,
        "api/tokens.html",
        {
            "form": form,
            "tokens": tokens.tokens_of(request.user),
            "created": created,
            "secret": secret,
        },
    )


@login_required
@require_POST
def token_revoke(request, token_id: int):
    token = tokens.token_revoke(owner=request.user, token_id=token_id)
    if token is None:
        raise Http404  # another customer's token does not exist for this one
    messages.success(request, f"The token “{token.name}” is revoked; it no longer works.")
    return redirect("api:tokens")

"""The audit log of what staff do in the admin: Django's own `LogEntry` (who, what, when, on
which object), with the state before and after in its change message.

Django writes an entry for each add, change and delete made through a model form; `AuditedAdmin`
makes those change messages say old and new values, and writes an entry per object for every
admin action. What staff do on pages of their own (a server's operations, a credit note, a look
at a customer's pages) calls `record`. Secrets never reach a message: fields named like one are
written as "(changed)".
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping

from django import forms
from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.db import models

# A look at a customer's pages (read-only): not a change, so not Django's CHANGE flag.
VIEW = 4
ACTION_NAMES = {ADDITION: "added", CHANGE: "changed", DELETION: "deleted", VIEW: "viewed"}
SECRET_WORDS = ("password", "secret", "token", "encrypted")
LONGEST_VALUE = 120


def record(
    user,
    obj: models.Model,
    what: str,
    *,
    before: Mapping[str, object] | None = None,
    after: Mapping[str, object] | None = None,
    flag: int = CHANGE,
) -> LogEntry:
    """One entry in the audit log: `user` did `what` to `obj`, which looked like `before` and
    then like `after` (each a few named values)."""
    return LogEntry.objects.log_actions(
        user_id=user.pk,
        queryset=[obj],
        action_flag=flag,
        change_message=describe(what, before, after),
        single_object=True,
    )


def describe(what: str, before: Mapping | None, after: Mapping | None) -> str:
    """`Reboot. Before: status running, operation none. After: status running, operation
    reboot (queued).`"""
    text = what.rstrip(".") + "."
    if before is not None:
        text += f" Before: {describe_values(before)}."
    if after is not None:
        text += " After: unchanged." if after == before else f" After: {describe_values(after)}."
    return text


def describe_values(values: Mapping) -> str:
    """`status running, operation none`: named values as the log writes them."""
    return ", ".join(f"{name} {_text(value)}" for name, value in values.items()) or "—"


def _text(value) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, models.QuerySet | list | tuple | set):
        return "[" + ", ".join(_text(item) for item in value) + "]"
    text = " ".join(str(value).split())
    return text if len(text) <= LONGEST_VALUE else text[: LONGEST_VALUE - 1] + "…"


def _is_secret(name: str) -> bool:
    return any(word in name for word in SECRET_WORDS)


# --- Forms: old and new values in the change message -----------------------------------------


def _initial_text(field: forms.Field, value) -> str:
    if isinstance(field, forms.ModelMultipleChoiceField):
        return _text([item for item in value or []])
    if isinstance(field, forms.ModelChoiceField) and value not in (None, ""):
        try:
            return _text(field.to_python(value))
        except forms.ValidationError:
            return _text(value)
    return _text(value)


def form_changes(form: forms.Form) -> list[str]:
    """`name: old → new` for each field the form changed."""
    changes = []
    for name in form.changed_data:
        field = form.fields[name]
        label = str(form[name].label).lower()
        if _is_secret(name):
            changes.append(f"{label} (changed)")
            continue
        old = _initial_text(field, form.get_initial_for_field(field, name))
        new = _text(form.cleaned_data.get(name))
        changes.append(f"{label}: {old} → {new}")
    return changes


def formset_changes(formset) -> list[str]:
    noun = formset.model._meta.verbose_name
    changes = [f"added {noun} “{obj}”" for obj in getattr(formset, "new_objects", [])]
    changed = {obj.pk for obj, _ in getattr(formset, "changed_objects", [])}
    for inline_form in formset.initial_forms:
        if inline_form.instance.pk in changed:
            inner = "; ".join(form_changes(inline_form))
            changes.append(f"{noun} “{inline_form.instance}”: {inner}")
    changes += [f"deleted {noun} “{obj}”" for obj in getattr(formset, "deleted_objects", [])]
    return changes


# --- The admin classes -------------------------------------------------------------------------


class AuditedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose log entries say old and new values, and that logs its actions.

    `audit_fields` name what describes an object's state for an action's before and after
    (attributes of the object, annotations of `get_queryset` included); `audit_state` may
    say it otherwise.
    """

    audit_fields: tuple[str, ...] = ()

    def audit_state(self, obj) -> dict[str, object]:
        return {name.replace("_", " "): getattr(obj, name, None) for name in self.audit_fields}

    def construct_change_message(self, request, form, formsets, add=False):
        if add:
            return super().construct_change_message(request, form, formsets, add)
        changes = form_changes(form)
        for formset in formsets or []:
            changes += formset_changes(formset)
        return ("Changed " + "; ".join(changes) + ".") if changes else "No fields changed."

    def get_action(self, action, *args, **kwargs):
        found = super().get_action(action, *args, **kwargs)
        if found is None or found.name == "delete_selected":
            return found  # Django logs deletions itself
        return dataclasses.replace(found, func=_logged(found.func, str(found.description)))


def _logged(func, description: str):
    """The action, writing one log entry per selected object with its state before and after."""

    @functools.wraps(func)
    def run(modeladmin: AuditedAdmin, request, queryset):
        before = {obj.pk: (obj, modeladmin.audit_state(obj)) for obj in queryset.all()}
        response = func(modeladmin, request, queryset)
        after = modeladmin.get_queryset(request).filter(pk__in=list(before)).in_bulk()
        for pk, (obj, state) in before.items():
            now = after.get(pk)
            record(
                request.user,
                now or obj,
                f"{description} (admin action)",
                before=state,
                after=modeladmin.audit_state(now) if now else {"deleted": True},
            )
        return response

    return run

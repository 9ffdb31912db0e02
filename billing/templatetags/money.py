from django import template

from billing.models import money as format_money

register = template.Library()


@register.filter
def money(cents, currency="EUR"):
    """`{{ order.monthly_net_cents|money:order.currency }}` → €4.99"""
    if cents in (None, ""):
        return ""
    return format_money(int(cents), currency or "EUR")


@register.filter
def gib(mib):
    value = int(mib) / 1024
    return f"{value:g} GiB"

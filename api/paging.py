"""Pagination for lists: `?page=1&per_page=50` in, `{items, count, page, per_page}` out."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from ninja import Field, Schema
from pydantic import create_model

MAX_PER_PAGE = 100


class Paging(Schema):
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(50, ge=1, le=MAX_PER_PAGE)


@cache
def page_of(item: type[Schema]) -> type[Schema]:
    """The schema of a page of `item`s."""
    return create_model(
        f"{item.__name__}Page",
        __base__=Schema,
        items=(list[item], ...),
        count=(int, Field(description="How many there are in all.")),
        page=(int, ...),
        per_page=(int, ...),
    )


def paginate(queryset, paging: Paging, present: Callable) -> dict:
    start = (paging.page - 1) * paging.per_page
    rows = queryset[start : start + paging.per_page]
    return {
        "items": [present(row) for row in rows],
        "count": queryset.count(),
        "page": paging.page,
        "per_page": paging.per_page,
    }

"""`manage.py pve_check` looks at the cluster's backup storage: there on every node, taking
backups, and says when it is node-local."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from instances.models import Cluster


def pve_check() -> str:
    out = StringIO()
    try:
        call_command("pve_check", "fra1", stdout=out, no_color=True)
    finally:
        print(out.getvalue())  # shown by pytest when a test fails
    return out.getvalue()


def test_the_demos_local_storage_takes_backups_and_is_node_local(world):
    report = pve_check()
    assert "backups go to local (content backup, on 3 node(s))" in report
    assert "local is node-local: a server's backups stay on the node that made them" in report


def test_a_backup_storage_without_content_backup_fails_the_check(world):
    Cluster.objects.update(backup_storage="nvme")
    with pytest.raises(CommandError, match=r"pve-a/nvme does not take backups"):
        pve_check()


def test_a_backup_storage_the_nodes_lack_fails_the_check(world):
    Cluster.objects.update(backup_storage="nas")
    with pytest.raises(CommandError, match=r"node pve-a has no backup storage nas"):
        pve_check()


def test_no_backup_storage_is_only_a_note(world):
    Cluster.objects.update(backup_storage="")
    assert "no backup storage set" in pve_check()

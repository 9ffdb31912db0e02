"""Everything that changes a server after it is ordered, as operations (see base.py).

KINDS maps each InstanceOperation.Kind to its table of steps. Importing this package loads the
tables only, not the engine (engine.py) nor proxmoxer: pages read labels from here.
"""

from __future__ import annotations

from instances.operations.backups import BACKUP, RESTORE
from instances.operations.base import Kind
from instances.operations.build import BUILD
from instances.operations.firewall import FIREWALL
from instances.operations.install import INSTALL
from instances.operations.lifecycle import SUSPEND, TERMINATE, UNSUSPEND
from instances.operations.migrate import MIGRATE
from instances.operations.password import PASSWORD
from instances.operations.power import REBOOT, RESET, SHUTDOWN, START, STOP
from instances.operations.reinstall import REINSTALL
from instances.operations.rename import RENAME
from instances.operations.resize import RESIZE
from instances.operations.reverse_dns import REVERSE_DNS
from instances.operations.snapshots import ROLLBACK, SNAPSHOT, SNAPSHOT_DELETE

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        *(BUILD, INSTALL, START, SHUTDOWN, STOP, REBOOT, RESET, REINSTALL, PASSWORD, RENAME),
        *(RESIZE, MIGRATE, SUSPEND, UNSUSPEND, TERMINATE, REVERSE_DNS, FIREWALL),
        *(SNAPSHOT, ROLLBACK, SNAPSHOT_DELETE, BACKUP, RESTORE),
    )
}

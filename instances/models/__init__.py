"""The instances app's models: infrastructure, servers, and the operations that change them."""

from instances.models.console import ConsoleSession
from instances.models.firewall import Firewall, FirewallRule
from instances.models.infrastructure import (
    Cluster,
    DedicatedServer,
    Family,
    IPAddress,
    IPPool,
    Location,
    Node,
    NodeStorage,
    OSImage,
    OSTemplate,
    StorageClass,
    StoragePool,
)
from instances.models.operations import InstanceOperation
from instances.models.recovery import InstanceBackup, InstanceSnapshot
from instances.models.reverse_dns import ReverseDns
from instances.models.servers import Instance, InstanceEvent, InstanceTraffic

__all__ = [
    "Cluster",
    "ConsoleSession",
    "DedicatedServer",
    "Family",
    "Firewall",
    "FirewallRule",
    "IPAddress",
    "IPPool",
    "Instance",
    "InstanceBackup",
    "InstanceEvent",
    "InstanceOperation",
    "InstanceSnapshot",
    "InstanceTraffic",
    "Location",
    "Node",
    "NodeStorage",
    "OSImage",
    "OSTemplate",
    "ReverseDns",
    "StorageClass",
    "StoragePool",
]

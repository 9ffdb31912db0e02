"""The instances admin: infrastructure, and the servers support works on."""

from instances.admin import firewall, infrastructure, servers  # noqa: F401 - they register their admins

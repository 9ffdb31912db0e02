"""The Proxmox VE API client: the only module that imports proxmoxer.

Methods return plain data and raise ProxmoxError: ProxmoxTransient (try again later) or
ProxmoxPermanent (trying again will not help), with PVE's own message.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import ssl
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests
from django.conf import settings
from proxmoxer import ProxmoxAPI, ResourceException
from proxmoxer.backends import https as _proxmoxer_https  # noqa: F401 - see the filter below
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InsecureRequestWarning

from common.websocket import Closed, HandshakeRefused, WebSocketClient

# proxmoxer's https backend calls urllib3.disable_warnings() on import, which hides every
# unverified-HTTPS warning in the whole process. We never make an unverified request, and if some
# code ever did, we want to hear about it.
warnings.filterwarnings("default", category=InsecureRequestWarning)


# What the portal's API token needs on "/" (privilege separation off, or the same on the token):
# the README's PVE role lists exactly these, and pve_check compares them with the token's own.
PRIVILEGES = (
    "Datastore.AllocateSpace",  # clone and grow disks, write and delete backups
    "Datastore.Audit",  # see the storages and their space
    "SDN.Use",  # put a VM on the bridge (its zone) when cloning
    "Sys.Audit",  # nodes, node status, other users' tasks
    "VM.Allocate",  # create (clone) and destroy VMs
    "VM.Audit",  # config, status, pending, rrddata, /cluster/resources
    "VM.Backup",  # vzdump, restore over the VM, delete its archives
    "VM.Clone",  # clone the templates
    "VM.Config.CDROM",  # the cloud-init drive
    "VM.Config.CPU",
    "VM.Config.Cloudinit",  # user, password, SSH keys, addresses
    "VM.Config.Disk",  # resize, move_disk
    "VM.Config.HWType",  # hotplug (CPU and memory for live upgrades)
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.Options",  # name, description, tags, onboot
    "VM.Console",  # the browser console: vncproxy, termproxy, vncwebsocket
    "VM.GuestAgent.Audit",  # ping the guest agent
    "VM.GuestAgent.Unrestricted",  # set a password through it
    "VM.Migrate",  # live-migrate to another node
    "VM.PowerMgmt",  # start, shutdown, stop, reboot, reset
    # take, delete and roll back snapshots (PVE takes VM.Snapshot.Rollback *or* this for a
    # rollback, so the portal needs no more)
    "VM.Snapshot",
)


class ProxmoxError(Exception):
    """An error from PVE (or from reaching it); `message` is PVE's own text, unchanged."""

    def __init__(
        self, message: str, status: int | None = None, errors: dict[str, str] | None = None
    ) -> None:
        self.message = message
        self.status = status
        self.errors = errors or {}  # per-parameter messages of a 400
        super().__init__(message)

    def __str__(self) -> str:
        fields = "; ".join(f"{key}: {text.strip()}" for key, text in sorted(self.errors.items()))
        return f"{self.message.strip()} ({fields})" if fields else self.message.strip()


class ProxmoxTransient(ProxmoxError):
    """Worth retrying with backoff: locks, lost quorum, an unreachable node, network trouble."""


class ProxmoxPermanent(ProxmoxError):
    """Retrying will not help: bad parameters, a refused change, a missing VM, wrong credentials."""


class ProxmoxNotFound(ProxmoxPermanent):
    """The VM (or template) does not exist on that node."""


class ProxmoxTLSError(ProxmoxPermanent):
    """The server's certificate was refused (wrong CA or fingerprint): fix the Cluster row."""


# Proxy errors (595/596/597 are pveproxy's own, from AnyEvent::HTTP, when it cannot reach the
# node a request is for) and gateway errors in front of the API.
_TRANSIENT_STATUS = frozenset({502, 503, 504, 595, 596, 597})
# 400: parameter errors; 401/403: credentials and permissions. No retry fixes these.
_PERMANENT_STATUS = frozenset({400, 401, 403})
_NOT_FOUND = re.compile(
    r"Configuration file '[^']*' does not exist|unable to find configuration file for VM"
)
_TRANSIENT_TEXT = re.compile(
    r"can't lock file"  # another task holds the VM (or storage) lock
    r"|got timeout|timed out|lock request timeout"  # waiting for something that is busy
    r"|no quorum"  # /etc/pve is read-only until the cluster is quorate again
    # A backup, migration, clone or snapshot holds the VM; it ends by itself, and the caller's
    # bounded retries turn a lock nobody clears (an interrupted snapshot) into a failure.
    r"|\b(?:VM|CT) is locked \("
    r"|No route to host|Connection refused|Connection reset",
    re.IGNORECASE,
)


# The guest did not power off in time: waiting longer changes nothing (despite "got timeout").
_PERMANENT_TEXT = re.compile(r"quit/powerdown failed")


def classify(status: int | None, message: str) -> type[ProxmoxError]:
    """The error class for an HTTP status (None for a task's exit status) and PVE's message."""
    if status in _PERMANENT_STATUS or _PERMANENT_TEXT.search(message):
        return ProxmoxPermanent
    if status in _TRANSIENT_STATUS:
        return ProxmoxTransient
    if _NOT_FOUND.search(message):
        return ProxmoxNotFound
    if _TRANSIENT_TEXT.search(message):
        return ProxmoxTransient
    return ProxmoxPermanent


def _error(status: int | None, message: str, errors: dict[str, str] | None = None) -> ProxmoxError:
    return classify(status, message)(message, status=status, errors=errors)


def _from_resource_exception(exc: ResourceException) -> ProxmoxError:
    # pveproxy puts the message in the HTTP reason phrase, which proxmoxer keeps as `content`.
    message = str(exc.content or exc.status_message or "")
    errors = exc.errors if isinstance(exc.errors, dict) else None
    if errors and not all(isinstance(v, str) for v in errors.values()):
        errors = None  # proxmoxer's stand-in for a body that was not JSON (a proxy's HTML page)
    return _error(exc.status_code, message, errors)


def _from_requests_exception(exc: requests.RequestException) -> ProxmoxError:
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError) and (
        "CERTIFICATE_VERIFY_FAILED" in text or "Fingerprints did not match" in text
    ):
        return ProxmoxTLSError(f"TLS certificate refused: {text}")
    # Also an SSLError without a verdict on the certificate (a handshake cut short).
    transient = (
        requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError
    )
    return (ProxmoxTransient if isinstance(exc, transient) else ProxmoxPermanent)(text)


@dataclass(frozen=True)
class TaskStatus:
    """A PVE task: finished only when stopped, and succeeded only with exit status "OK"."""

    upid: str
    running: bool
    ok: bool
    exitstatus: str | None

    def error(self) -> ProxmoxError | None:
        """The classified error of a task that ended badly; None while it runs or after success."""
        if self.running or self.ok:
            return None
        message = self.exitstatus or "task ended without an exit status"
        return _error(None, message)


def upid_node(upid: str) -> str:
    """The node a task runs on, from its UPID ("UPID:<node>:<pid>:..."). Only that node knows
    the task: a clone to another node runs on the template's node, a migration on the source."""
    kind, node, *rest = upid.split(":")
    if kind != "UPID" or not node or len(rest) < 6:
        raise ProxmoxPermanent(f"not a PVE task id: {upid!r}")
    return node


class _PinnedAdapter(HTTPAdapter):
    """Accepts the server only if its certificate's SHA-256 is the pinned one."""

    def __init__(self, fingerprint: str) -> None:
        self._fingerprint = fingerprint  # set first: HTTPAdapter.__init__ calls init_poolmanager
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_fingerprint"] = self._fingerprint
        super().init_poolmanager(*args, **kwargs)


def _normalise_fingerprint(text: str) -> str:
    digest = re.sub(r"[\s:]", "", text).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError("tls_fingerprint must be a SHA-256 in hex (64 digits, colons allowed)")
    return digest


def _ca_file(pem: str) -> str:
    """The CA bundle as a file under VAR_DIR/pve-ca, named by its SHA-256 (written once)."""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ValueError("ca_bundle must be PEM text (-----BEGIN CERTIFICATE-----)")
    data = pem.strip().encode() + b"\n"
    directory = Path(settings.VAR_DIR) / "pve-ca"
    path = directory / f"{hashlib.sha256(data).hexdigest()}.pem"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        # A temporary name first, so a worker in another process never reads half a file.
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    return str(path)


def _pick(item: dict[str, Any], **defaults: Any) -> dict[str, Any]:
    return {key: item.get(key, default) for key, default in defaults.items()}


def _split_tags(text: str | None) -> list[str]:
    return [tag for tag in re.split(r"[;,\s]+", text or "") if tag]


_clients = threading.local()


class PveClient:
    """One PVE cluster's API with an API token, over TLS that is always verified:
    by the CA bundle, the pinned fingerprint (or both), else the system's CAs."""

    def __init__(
        self,
        *,
        api_url: str,
        token_id: str,
        token_secret: str,
        ca_bundle: str = "",
        tls_fingerprint: str = "",
        timeout: float = 30,
    ) -> None:
        parts = urlsplit(api_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"api_url must be https://host[:port], not {api_url!r}")
        user, _, token_name = token_id.rpartition("!")
        if not user or not token_name:
            raise ValueError("token_id must look like user@realm!tokenname")
        self.api_url = api_url
        self.token_id = token_id
        # For the console's websocket, which proxmoxer does not open: the same host, TLS and token.
        self._authorization = f"PVEAPIToken={token_id}={token_secret}"
        self._pinned = _normalise_fingerprint(tls_fingerprint) if tls_fingerprint.strip() else ""
        prefix = parts.path.strip("/").removesuffix("api2/json").strip("/")
        if ca_bundle.strip():
            verify: str | bool = _ca_file(ca_bundle)
        elif tls_fingerprint.strip():
            # Not an unverified connection: the adapter below checks the pinned fingerprint,
            # which is all the trust a self-signed PVE certificate can offer.
            verify = False
        else:
            verify = True  # the system's CAs
        self._tls_verify = verify
        self._api = ProxmoxAPI(
            parts.hostname,
            port=parts.port or 8006,
            path_prefix=prefix or None,
            user=user,
            token_name=token_name,
            token_value=token_secret,
            verify_ssl=verify,
            timeout=timeout,
        )
        if tls_fingerprint.strip():
            # proxmoxer has no public hook for its requests session; ProxmoxAPI keeps it in
            # _store["session"] and every resource it hands out copies that same session.
            session: requests.Session = self._api._store["session"]
            session.mount("https://", _PinnedAdapter(_normalise_fingerprint(tls_fingerprint)))
            # urllib3 2 counts a matched fingerprint as verified; older versions still warn.
            host = re.escape(parts.hostname)
            warnings.filterwarnings(
                "ignore",
                message=f"Unverified HTTPS request is being made to host '{host}'",
                category=InsecureRequestWarning,
            )

    @classmethod
    def for_cluster(cls, cluster: Any) -> PveClient:
        """The client for an instances.models.Cluster row, kept per thread while the row's
        connection settings stay the same: a build polls often, and a kept-alive TLS
        connection saves a handshake (and a token decryption) per look."""
        key = (
            cluster.pk,
            cluster.api_url,
            cluster.token_id,
            cluster.token_secret_encrypted,
            cluster.ca_bundle,
            cluster.tls_fingerprint,
        )
        cache = _clients.__dict__.setdefault("by_cluster", {})
        client = cache.get(cluster.pk)
        if client is None or client._key != key:
            if client is not None:
                client.close()
            client = cls(
                api_url=cluster.api_url,
                token_id=cluster.token_id,
                token_secret=cluster.token_secret,
                ca_bundle=cluster.ca_bundle,
                tls_fingerprint=cluster.tls_fingerprint,
            )
            client._key = key
            cache[cluster.pk] = client
        return client

    def __repr__(self) -> str:  # never the secret
        return f"PveClient({self.api_url!r}, token_id={self.token_id!r})"

    def close(self) -> None:
        """Close the kept-alive connections (a dropped client also closes them, later)."""
        self._api._store["session"].close()

    def _call(self, method: str, path: str, /, **params: Any) -> Any:
        params = {key: value for key, value in params.items() if value is not None}
        try:
            return getattr(self._api(path), method)(**params)
        except ResourceException as exc:
            raise _from_resource_exception(exc) from exc
        except requests.RequestException as exc:
            raise _from_requests_exception(exc) from exc

    # --- cluster ---------------------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        """PVE's version, release and repoid."""
        return self._call("get", "version")

    def nodes(self) -> list[dict[str, Any]]:
        """The cluster's nodes: name, status (online/offline), maxcpu, maxmem, cpu, mem."""
        nodes = sorted(self._call("get", "nodes"), key=lambda item: item["node"])
        return [
            {"name": n["node"], **_pick(n, status="unknown", maxcpu=0, maxmem=0, cpu=0.0, mem=0)}
            for n in nodes
        ]

    def node_storages(self, node: str) -> list[dict[str, Any]]:
        """The storages a node sees, with type, content types, state and space in bytes."""
        return [
            {
                "storage": item["storage"],
                "type": item.get("type", ""),
                "content": sorted(filter(None, str(item.get("content", "")).split(","))),
                **{flag: bool(item.get(flag)) for flag in ("active", "enabled", "shared")},
                **_pick(item, total=0, used=0, avail=0),
            }
            for item in self._call("get", f"nodes/{node}/storage")
        ]

    def privileges(self, path: str = "/") -> set[str]:
        """The privileges this token holds on `path` (from /access/permissions)."""
        held = self._call("get", "access/permissions", path=path)
        return {priv for privs in held.values() for priv, on in privs.items() if on}

    def cluster_resources(self, kind: str | None = None) -> list[dict[str, Any]]:
        """/cluster/resources as PVE returns it; kind is vm, storage, node or sdn."""
        return self._call("get", "cluster/resources", type=kind)

    def vmid_free(self, vmid: int) -> bool:
        """True if no VM or container in the cluster uses this VMID."""
        try:
            self._call("get", "cluster/nextid", vmid=vmid)
        except ProxmoxPermanent as exc:
            # PVE answers a taken id with a 400 on the vmid parameter ("VM 100 already exists").
            if exc.status == 400 and "already exists" in exc.errors.get("vmid", ""):
                return False
            raise
        return True

    def find_vm(self, vmid: int) -> dict[str, Any] | None:
        """Where the guest with this VMID is (node, name, status, tags, template, lock), or None."""
        for item in self.cluster_resources("vm"):
            if int(item.get("vmid", -1)) == vmid:
                return {
                    "vmid": vmid,
                    **_pick(item, type="qemu", node=None, name="", status="unknown", lock=None),
                    "tags": _split_tags(item.get("tags")),
                    "template": bool(item.get("template")),
                }
        return None

    # --- tasks -----------------------------------------------------------------------------------

    def task_status(self, upid: str) -> TaskStatus:
        """The state of a task, by its UPID exactly as PVE returned it."""
        data = self._call("get", f"nodes/{upid_node(upid)}/tasks/{upid}/status")
        stopped = data.get("status") == "stopped"
        exitstatus = data.get("exitstatus")
        return TaskStatus(upid, not stopped, stopped and exitstatus == "OK", exitstatus)

    def task_log(self, upid: str, *, limit: int = 50) -> list[str]:
        """The first `limit` lines of a task's log."""
        lines = self._call("get", f"nodes/{upid_node(upid)}/tasks/{upid}/log", limit=limit)
        return [line.get("t", "") for line in sorted(lines, key=lambda line: line.get("n", 0))]

    def wait_task(self, upid: str, *, timeout: float, poll: float = 1.0) -> TaskStatus:
        """Poll until the task stops or `timeout` seconds pass; the last status (maybe running)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.task_status(upid)
            remaining = deadline - time.monotonic()
            if not status.running or remaining <= 0:
                return status
            time.sleep(min(poll, remaining))

    # --- VMs -------------------------------------------------------------------------------------

    def clone(
        self,
        node: str,
        template_vmid: int,
        *,
        vmid: int,
        name: str,
        full: bool,
        storage: str | None = None,
        target: str | None = None,
        description: str | None = None,
    ) -> str:
        """Start cloning a template into a new VM; returns the task's UPID."""
        return self._call(
            "post",
            f"nodes/{node}/qemu/{template_vmid}/clone",
            newid=vmid,
            name=name,
            full=int(full),
            storage=storage,
            target=target,
            description=description,
        )

    def vm_config(self, node: str, vmid: int, *, current: bool = False) -> dict[str, Any]:
        """The VM's config with pending changes applied (current=True: the running values)."""
        return self._call("get", f"nodes/{node}/qemu/{vmid}/config", current=int(current) or None)

    def vm_config_if_exists(self, node: str, vmid: int) -> dict[str, Any] | None:
        """The VM's config, or None when the node has no VM with this VMID. Unlike
        find_vm (/cluster/resources lists only what the token may audit), a token that may
        not read the VM gets PVE's refusal."""
        try:
            return self.vm_config(node, vmid)
        except ProxmoxNotFound:
            return None

    def vm_pending(self, node: str, vmid: int) -> list[dict[str, Any]]:
        """Each config key with its value, pending value or pending delete."""
        return self._call("get", f"nodes/{node}/qemu/{vmid}/pending")

    def set_config(self, node: str, vmid: int, **options: Any) -> str | None:
        """Change the VM's config in a task; returns its UPID (None if PVE answered without one).

        Booleans go out as 1/0, `sshkeys` (text or a list of lines) URL-encoded as PVE stores it,
        `tags` and `delete` lists joined as PVE expects.
        """
        data: dict[str, Any] = {}
        for key, value in options.items():
            if key == "sshkeys":
                keys = "\n".join(value) if isinstance(value, list | tuple) else value
                value = quote(keys, safe="")
            elif key == "tags" and isinstance(value, list | tuple):
                value = ";".join(value)
            elif isinstance(value, bool):
                value = int(value)
            elif isinstance(value, list | tuple):
                value = ",".join(str(item) for item in value)
            data[key] = value
        return self._call("post", f"nodes/{node}/qemu/{vmid}/config", **data) or None

    def resize_disk(self, node: str, vmid: int, disk: str, size: str) -> str | None:
        """Grow a disk to `size` ("40G") or by it ("+10G"); PVE refuses to shrink."""
        return self._call("put", f"nodes/{node}/qemu/{vmid}/resize", disk=disk, size=size) or None

    def start(self, node: str, vmid: int) -> str:
        """Start the VM; returns the task's UPID."""
        return self._call("post", f"nodes/{node}/qemu/{vmid}/status/start")

    def shutdown(self, node: str, vmid: int, *, timeout: int | None = None) -> str:
        """Ask the guest to power off (ACPI), giving up after `timeout` seconds; returns a UPID."""
        return self._call("post", f"nodes/{node}/qemu/{vmid}/status/shutdown", timeout=timeout)

    def stop(self, node: str, vmid: int) -> str:
        """Stop the VM at once (pull the plug); returns the task's UPID."""
        return self._call("post", f"nodes/{node}/qemu/{vmid}/status/stop")

    def reboot(self, node: str, vmid: int, *, timeout: int | None = None) -> str:
        """Reboot the guest (ACPI, waiting `timeout` s), applying pending changes; a UPID."""
        return self._call("post", f"nodes/{node}/qemu/{vmid}/status/reboot", timeout=timeout)

    def reset(self, node: str, vmid: int) -> str:
        """Reset the VM at once (the reset button); returns the task's UPID."""
        return self._call("post", f"nodes/{node}/qemu/{vmid}/status/reset")

    def agent_ping(self, node: str, vmid: int) -> bool:
        """Whether the QEMU guest agent answers: PVE answers 500 "QEMU guest agent is not
        running", or "qmp command 'guest-ping' failed - got timeout" for a hung agent."""
        try:
            self._call("post", f"nodes/{node}/qemu/{vmid}/agent/ping")
        except ProxmoxError as exc:
            if exc.status == 500 and re.search(r"guest agent|'guest-ping'", exc.message):
                return False
            raise
        return True

    def agent_set_password(self, node: str, vmid: int, *, username: str, password: str) -> None:
        """Set a user's password inside the guest through the QEMU guest agent."""
        self._call(
            "post",
            f"nodes/{node}/qemu/{vmid}/agent/set-user-password",
            username=username,
            password=password,
        )

    def vm_status(self, node: str, vmid: int) -> dict[str, Any]:
        """The VM's state: status, qmpstatus, uptime, cpus, maxmem, maxdisk, lock."""
        data = self._call("get", f"nodes/{node}/qemu/{vmid}/status/current")
        return _pick(
            data, status="unknown", qmpstatus=None, uptime=0, cpus=0, maxmem=0, maxdisk=0, lock=None
        )

    def migrate(
        self,
        node: str,
        vmid: int,
        *,
        target: str,
        online: bool = True,
        with_local_disks: bool = False,
        targetstorage: str | None = None,
    ) -> str:
        """Move the VM to another node (live when running); returns the task's UPID, a task
        of the source node. `targetstorage` maps local disks' storages ("src:dst,...")."""
        return self._call(
            "post",
            f"nodes/{node}/qemu/{vmid}/migrate",
            target=target,
            online=int(online),
            targetstorage=targetstorage,
            **{"with-local-disks": int(with_local_disks) or None},
        )

    def migrate_preconditions(self, node: str, vmid: int) -> dict[str, Any]:
        """Whether the VM runs, the nodes it may move to, and its local disks."""
        data = self._call("get", f"nodes/{node}/qemu/{vmid}/migrate")
        return {
            "running": bool(data.get("running")),
            "allowed_nodes": sorted(data.get("allowed_nodes") or []),
            "not_allowed_nodes": data.get("not_allowed_nodes") or {},
            "local_disks": [disk.get("volid", "") for disk in data.get("local_disks") or []],
        }

    def move_disk(self, node: str, vmid: int, *, disk: str, storage: str, delete: bool) -> str:
        """Copy a disk to another storage (live when running); `delete` frees the old volume
        instead of keeping it as an unused disk. Returns the task's UPID."""
        return self._call(
            "post",
            f"nodes/{node}/qemu/{vmid}/move_disk",
            disk=disk,
            storage=storage,
            delete=int(delete),
        )

    def destroy(self, node: str, vmid: int, *, purge: bool = True) -> str:
        """Delete the VM and all its disks, referenced or not; returns the task's UPID."""
        return self._call(
            "delete",
            f"nodes/{node}/qemu/{vmid}",
            purge=int(purge),
            **{"destroy-unreferenced-disks": 1},
        )

    # --- snapshots and backups ---------------------------------------------------------------

    def snapshots(self, node: str, vmid: int) -> list[dict[str, Any]]:
        """The VM's snapshots (name, description, snaptime, parent), without PVE's "current"."""
        items = self._call("get", f"nodes/{node}/qemu/{vmid}/snapshot")
        return [
            {"name": item["name"], **_pick(item, description="", snaptime=0, parent=None)}
            for item in items
            if item.get("name") != "current"
        ]

    def snapshot_create(self, node: str, vmid: int, *, name: str, description: str) -> str:
        """Snapshot the VM's disks (not its RAM); returns the task's UPID."""
        return self._call(
            "post", f"nodes/{node}/qemu/{vmid}/snapshot", snapname=name, description=description
        )

    def snapshot_rollback(self, node: str, vmid: int, name: str) -> str:
        """Put the VM back to the snapshot (it is stopped, and stays so); returns a UPID."""
        return self._call("post", f"nodes/{node}/qemu/{vmid}/snapshot/{name}/rollback")

    def snapshot_delete(self, node: str, vmid: int, name: str) -> str:
        """Delete the snapshot; returns the task's UPID."""
        return self._call("delete", f"nodes/{node}/qemu/{vmid}/snapshot/{name}")

    def backup(self, node: str, vmid: int, *, storage: str, notes: str) -> str | None:
        """Start a vzdump of the running VM (snapshot mode, zstd) to `storage`, its notes
        `notes`; the portal prunes old archives itself (prune-backups would need
        Datastore.Allocate). Returns the task's UPID (None: PVE found the VM elsewhere)."""
        upid = self._call(
            "post",
            f"nodes/{node}/vzdump",
            vmid=str(vmid),
            storage=storage,
            mode="snapshot",
            compress="zstd",
            remove=0,
            **{"notes-template": notes},
        )
        return upid if isinstance(upid, str) and upid.startswith("UPID:") else None

    def backups(self, node: str, storage: str, vmid: int) -> list[dict[str, Any]]:
        """The VM's archives on a storage: volid, size (bytes), ctime, notes, protected."""
        items = self._call(
            "get", f"nodes/{node}/storage/{storage}/content", content="backup", vmid=vmid
        )
        return [
            {"volid": item["volid"], **_pick(item, size=0, ctime=0, notes="", protected=0)}
            for item in items
        ]

    def volume_delete(self, node: str, storage: str, volid: str) -> str | None:
        """Delete a volume (an archive) from a storage; returns the task's UPID."""
        return self._call("delete", f"nodes/{node}/storage/{storage}/content/{volid}") or None

    def restore(self, node: str, vmid: int, *, archive: str) -> str:
        """Replace the stopped VM by the archive (its disks, snapshots and config); a UPID."""
        return self._call("post", f"nodes/{node}/qemu", vmid=vmid, archive=archive, force=1)

    def rrd_data(
        self, node: str, vmid: int, *, timeframe: str = "hour", cf: str = "AVERAGE"
    ) -> list[dict[str, Any]]:
        """Usage samples (cpu, mem, disk and net rates) over hour, day, week, month or year."""
        return self._call("get", f"nodes/{node}/qemu/{vmid}/rrddata", timeframe=timeframe, cf=cf)

    # --- the VM's firewall (synchronous calls: PVE answers without a task) ----------------

    def _firewall(self, node: str, vmid: int, path: str = "") -> str:
        return f"nodes/{node}/qemu/{vmid}/firewall/{path}".rstrip("/")

    def firewall_options(self, node: str, vmid: int) -> dict[str, Any]:
        """The VM firewall's options that are set (enable, ipfilter, policy_in, ...) and digest."""
        return self._call("get", self._firewall(node, vmid, "options"))

    def firewall_options_set(self, node: str, vmid: int, **options: Any) -> None:
        """Set options (booleans as 1/0); `digest` refuses the change if others changed them."""
        values = {k: int(v) if isinstance(v, bool) else v for k, v in options.items()}
        self._call("put", self._firewall(node, vmid, "options"), **values)

    def firewall_rules(self, node: str, vmid: int) -> list[dict[str, Any]]:
        """The VM's rules in order (pos 0 first), each with the list's digest."""
        rules = self._call("get", self._firewall(node, vmid, "rules"))
        return sorted(rules, key=lambda rule: rule.get("pos", 0))

    def firewall_rule_add(self, node: str, vmid: int, **rule: Any) -> None:
        """Add a rule in front of the others (PVE always inserts at position 0)."""
        self._call("post", self._firewall(node, vmid, "rules"), **rule)

    def firewall_rule_delete(self, node: str, vmid: int, pos: int) -> None:
        self._call("delete", self._firewall(node, vmid, f"rules/{pos}"))

    def firewall_ipset(self, node: str, vmid: int, name: str) -> list[dict[str, Any]] | None:
        """The entries (cidr, nomatch, comment) of the VM's IP set `name`; None if it has none."""
        names = {item["name"] for item in self._call("get", self._firewall(node, vmid, "ipset"))}
        if name not in names:
            return None
        return self._call("get", self._firewall(node, vmid, f"ipset/{name}"))

    def firewall_ipset_create(self, node: str, vmid: int, name: str, *, comment: str = "") -> None:
        self._call("post", self._firewall(node, vmid, "ipset"), name=name, comment=comment or None)

    def firewall_ipset_add(self, node: str, vmid: int, name: str, cidr: str) -> None:
        self._call("post", self._firewall(node, vmid, f"ipset/{name}"), cidr=cidr)

    def firewall_ipset_remove(self, node: str, vmid: int, name: str, cidr: str) -> None:
        path = self._firewall(node, vmid, f"ipset/{name}/{quote(cidr, safe='')}")
        self._call("delete", path)

    def datacenter_firewall_enabled(self) -> bool:
        """Whether the datacenter firewall is on (without it no VM firewall filters)."""
        return bool(self._call("get", "cluster/firewall/options").get("enable"))

    # --- consoles --------------------------------------------------------------------------------

    def vnc_proxy(self, node: str, vmid: int) -> ConsoleProxy:
        """Start a VNC proxy for the VM's screen (websocket=1); connect within PVE's 40 s."""
        data = self._call("post", f"nodes/{node}/qemu/{vmid}/vncproxy", websocket=1)
        return ConsoleProxy.from_answer(node, vmid, data)

    def term_proxy(self, node: str, vmid: int, *, serial: str | None = None) -> ConsoleProxy:
        """Start a terminal proxy on a serial port (default: the one `vga` shows); PVE answers
        400 when the VM has no such port."""
        data = self._call("post", f"nodes/{node}/qemu/{vmid}/termproxy", serial=serial)
        return ConsoleProxy.from_answer(node, vmid, data)

    async def console_websocket(
        self, proxy: ConsoleProxy, *, timeout: float = 10
    ) -> WebSocketClient:
        """Open PVE's vncwebsocket for a proxy, as pveproxy serves it: with the API token, over
        TLS checked like every other call (the CA bundle, the pinned fingerprint, or both)."""
        parts = urlsplit(self.api_url)
        host, port = parts.hostname, parts.port or 8006
        prefix = parts.path.strip("/").removesuffix("api2/json").strip("/")
        query = urlencode({"port": proxy.port, "vncticket": proxy.ticket})
        path = f"/{prefix}/" if prefix else "/"
        path += f"api2/json/nodes/{proxy.node}/qemu/{proxy.vmid}/vncwebsocket?{query}"
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=self._console_tls(), server_hostname=host),
                timeout,
            )
        except ssl.SSLCertVerificationError as exc:
            raise ProxmoxTLSError(f"TLS certificate refused: {exc}") from exc
        except (OSError, TimeoutError) as exc:
            raise ProxmoxTransient(f"{type(exc).__name__}: {exc}") from exc
        if self._pinned:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            if hashlib.sha256(der).hexdigest() != self._pinned:
                writer.close()
                raise ProxmoxTLSError("TLS certificate refused: Fingerprints did not match")
        try:
            return await asyncio.wait_for(
                WebSocketClient.open(
                    reader,
                    writer,
                    f"wss://{host}:{port}{path}",
                    headers={"Authorization": self._authorization},
                ),
                timeout,
            )
        except HandshakeRefused as exc:
            raise _error(exc.status, exc.reason) from None
        except (Closed, OSError, TimeoutError) as exc:
            writer.close()
            raise ProxmoxTransient(f"console websocket: {exc}") from exc

    def _console_tls(self) -> ssl.SSLContext:
        verify = self._tls_verify  # as proxmoxer's requests are checked
        if verify is False:  # only with a pinned fingerprint, compared after the handshake
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        return ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)


@dataclass(frozen=True)
class ConsoleProxy:
    """A console proxy PVE started for a VM: its port takes one websocket within the ticket's
    life. The ticket (and the VNC password) stay in the portal's console proxy: never in a
    page, a log or a repr."""

    node: str
    vmid: int
    port: int
    user: str  # who PVE issued it to (the token), as the terminal's first line names it
    ticket: str = field(repr=False)
    # What VNC authentication takes: the password PVE generated, else the ticket.
    vnc_password: str = field(repr=False)

    @classmethod
    def from_answer(cls, node: str, vmid: int, data: dict[str, Any]) -> ConsoleProxy:
        return cls(
            node=node,
            vmid=vmid,
            port=int(data["port"]),
            user=str(data["user"]),
            ticket=str(data["ticket"]),
            vnc_password=str(data.get("password") or data["ticket"]),
        )

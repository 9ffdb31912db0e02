"""What the demo cluster's guests do between API calls: they use CPU, memory, disk and network,
their guest agent answers once they have booted, and a customer can power one off from inside.

Installed on a FakePve by sandbox.pve.install_extensions; each addition follows PVE 9 (see the
table in sandbox/README.md and ../shared/reference/pve-9.1-api-schema.json).
"""

from __future__ import annotations

import hashlib
import math
import time

from fakepve import FakePve

RRDDATA = "/nodes/{node}/qemu/{vmid}/rrddata"
# PVE's RRD resolution per time frame (seconds per sample) and how many samples it returns.
TIMEFRAMES = {"hour": (60, 70), "day": (1800, 70), "week": (10800, 70), "month": (43200, 70)}
TIMEFRAMES["year"] = (604800, 70)
MIB = 1024**2
RATES = ("diskread", "diskwrite", "netin", "netout")


def install(pve: FakePve) -> None:
    _guest_agent_after_boot(pve)
    _usage_counters(pve)
    _rrddata(pve)


# --- the guest agent ------------------------------------------------------------------------


def agent_enabled(config: dict) -> bool:
    """`agent: 1` or `agent: enabled=1,...` (PVE's qemu-guest-agent property string)."""
    value = str(config.get("agent", "0"))
    first = value.split(",")[0]
    return first.split("=")[-1] == "1" if first.startswith(("enabled=", "1", "0")) else False


def _guest_agent_after_boot(pve: FakePve) -> None:
    """fakepve answers agent calls only when `vm.agent` is set; PVE answers whenever the guest
    runs qemu-guest-agent. A clone of an `agent: 1` template (the cloud images have it) gets
    an agent, which answers once the VM runs ("QEMU guest agent is not running" before)."""
    task = pve.task

    async def task_with_agent(node, ttype, tid, user, body, vm=None, lock=True, log=()):
        async def with_agent():
            note = await body()
            if ttype in ("qmclone", "qmcreate") and vm is not None:
                vm.agent = {} if agent_enabled(vm.config) else None
            if ttype == "qmstart" and vm is not None and not getattr(vm, "first_started", None):
                vm.first_started = time.time()  # where its usage history begins
            return note

        return await task(node, ttype, tid, user, with_agent, vm=vm, lock=lock, log=log)

    pve.task = task_with_agent


def power_off_from_inside(pve: FakePve, vmid: int) -> None:
    """The customer ran `poweroff` in the guest: QEMU exits, and PVE sees the VM stopped."""
    vm = pve.guest(vmid)
    vm.status = vm.qmpstatus = "stopped"
    vm.started_at = None


# --- usage: /cluster/resources and status/current counters ----------------------------------


def rates(vmid: int) -> dict[str, float]:
    """A guest's steady load, the same every run for one VMID: CPU share, memory in use, and
    bytes per second read, written, received and sent."""
    digest = hashlib.sha256(str(vmid).encode()).digest()
    spread = [byte / 255 for byte in digest[:6]]
    return {
        "cpu": 0.03 + 0.25 * spread[0],
        "mem": 0.25 + 0.5 * spread[1],
        "diskread": 20_000 + 400_000 * spread[2],
        "diskwrite": 50_000 + 800_000 * spread[3],
        "netin": 30_000 + 300_000 * spread[4],
        "netout": 60_000 + 900_000 * spread[5],
    }


def _wave(vmid: int, at: float) -> float:
    """A daily rhythm (busier in the afternoon) with some noise, 0.3 to 1.7."""
    day = math.sin((at % 86400) / 86400 * 2 * math.pi - math.pi / 2)
    noise = math.sin(at / 137 + vmid) * 0.2 + math.sin(at / 31 + 2 * vmid) * 0.1
    return max(0.3, 1 + 0.5 * day + noise)


def _usage_counters(pve: FakePve) -> None:
    """fakepve reports netin/netout/diskread/diskwrite as 0 and a fixed cpu/mem. PVE reports
    cumulative byte counters since the VM (its QEMU process) started, so they drop to 0 at each
    start, and the current cpu and mem; `vm.stats` still overrides any field, as in fakepve."""
    usage = pve._vm_usage

    def counting_usage(vm):
        data = usage(vm)
        if vm.status != "running" or not vm.started_at or vm.template:
            return data
        uptime = max(0.0, time.time() - vm.started_at)
        load = rates(vm.vmid)
        data["cpu"] = round(load["cpu"] * _wave(vm.vmid, time.time()), 4)
        data["mem"] = data["memhost"] = int(data["maxmem"] * load["mem"])
        for key in RATES:
            data[key] = int(load[key] * uptime)
        data.update((k, v) for k, v in vm.stats.items() if k in data)
        return data

    pve._vm_usage = counting_usage


# --- rrddata ---------------------------------------------------------------------------------


def _rrddata(pve: FakePve) -> None:
    """GET …/rrddata: fakepve answers `[{}]`. PVE answers one sample per step of the time frame
    (AVERAGE or MAX per step), oldest first, with `time` and, while the VM existed and ran,
    cpu (share of maxcpu), mem/maxmem (bytes), disk/maxdisk, and diskread, diskwrite, netin,
    netout as bytes per second. Steps before the VM existed have only `time`."""
    synthesise = pve.synthesise

    async def answer(match, method, info, user, values):
        if method == "GET" and match.template == RRDDATA:
            vm = pve.vm(int(values["vmid"]))
            if vm is not None and vm.node == values["node"]:
                pve.require(user, f"/vms/{vm.vmid}", "VM.Audit")
                return series(pve, vm, values["timeframe"], values.get("cf") or "AVERAGE")
        return await synthesise(match, method, info, user, values)

    pve.synthesise = answer


def series(pve: FakePve, vm, timeframe: str, cf: str, now: float | None = None) -> list[dict]:
    step, count = TIMEFRAMES[timeframe]
    now = now or time.time()
    end = int(now // step * step)
    born = getattr(vm, "first_started", None) or vm.started_at or now
    load = rates(vm.vmid)
    maxmem = int(str(vm.config.get("memory", 512)).split("=")[-1]) * MIB
    maxcpu = int(vm.config.get("cores", 1)) * int(vm.config.get("sockets", 1))
    peak = 1.6 if cf == "MAX" else 1.0
    samples = []
    for n in range(count):
        at = end - (count - 1 - n) * step
        sample: dict = {"time": at}
        if at >= born - step:
            wave = _wave(vm.vmid, at) * peak
            sample.update(
                cpu=round(min(1.0, load["cpu"] * wave), 5),
                maxcpu=maxcpu,
                mem=int(maxmem * min(0.95, load["mem"] * (0.9 + 0.1 * wave))),
                maxmem=maxmem,
                disk=0,
                maxdisk=pve._vm_maxdisk(vm),
                **{key: round(load[key] * wave, 2) for key in RATES},
            )
        samples.append(sample)
    return samples

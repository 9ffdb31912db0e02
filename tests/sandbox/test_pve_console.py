"""The demo cluster's consoles (sandbox/pve_console.py): vncproxy, termproxy and vncwebsocket as
PVE 9.1 answers them, checked against its schema, over TLS with proxmoxer and a websocket."""

from __future__ import annotations

import json
import secrets
import ssl
import struct
from pathlib import Path
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from proxmoxer import ProxmoxAPI, ResourceException
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from sandbox import pve as demo
from tests.sandbox.test_pve_demo import clone

VMID = 810
# The two endpoints' `returns` out of ../shared/reference/pve-9.1-api-schema.json, kept here so
# the test runs from any checkout.
SCHEMA = Path(__file__).resolve().parent / "pve_console_schema.json"
TYPES = {"integer": int, "string": str}


@pytest.fixture
def secret() -> str:
    return secrets.token_hex(8)


@pytest.fixture
def api(fakepve, fakepve_cafile, secret):
    demo.install_extensions(fakepve)
    demo.populate(fakepve, token_secret=secret)
    client = ProxmoxAPI(
        fakepve.host,
        port=fakepve.port,
        user="root@pam",
        token_name="portal",
        token_value=secret,
        verify_ssl=fakepve_cafile,
    )
    clone(client, "pve-a", VMID, full=1, storage="nvme")
    client.nodes("pve-a").qemu(VMID).status.start.post()
    return client


def vm_api(api):
    return api.nodes("pve-a").qemu(VMID)


def returns(path: str, method: str) -> dict:
    """The `returns` of an endpoint in PVE's published schema."""
    return json.loads(SCHEMA.read_text())["endpoints"][path][method]["returns"]


def assert_matches_schema(data: dict, path: str) -> None:
    spec = returns(path, "POST")["properties"]
    assert set(data) <= set(spec)
    for key, prop in spec.items():
        if not prop.get("optional"):
            assert key in data, key
        if key in data:
            assert isinstance(data[key], TYPES[prop["type"]]), (key, data[key])


def open_websocket(fakepve, fakepve_cafile, secret, answer, **query):
    query = {"port": answer["port"], "vncticket": answer["ticket"], **query}
    query = {key: value for key, value in query.items() if value is not None}
    url = (
        f"wss://{fakepve.host}:{fakepve.port}/api2/json/nodes/pve-a/qemu/{VMID}/vncwebsocket?"
        + urlencode(query)
    )
    context = ssl.create_default_context(cafile=fakepve_cafile)
    return connect(
        url,
        ssl=context,
        subprotocols=["binary"],
        additional_headers={"Authorization": f"PVEAPIToken=root@pam!portal={secret}"},
    )


def test_vncproxy_answers_an_integer_port_and_the_certificate(api, fakepve_cafile):
    answer = vm_api(api).vncproxy.post(websocket=1)
    assert_matches_schema(answer, "/nodes/{node}/qemu/{vmid}/vncproxy")
    assert 5900 <= answer["port"] <= 5999
    assert answer["cert"] == Path(fakepve_cafile).read_text()
    assert answer["user"] == "root@pam!portal"


def test_each_proxy_gets_a_port_of_its_own(api):
    first = vm_api(api).termproxy.post()
    second = vm_api(api).vncproxy.post(websocket=1)
    assert_matches_schema(first, "/nodes/{node}/qemu/{vmid}/termproxy")
    assert first["port"] != second["port"]


def test_termproxy_needs_a_serial_port(api, fakepve):
    with pytest.raises(ResourceException) as refused:
        vm_api(api).termproxy.post(serial="serial1")
    assert refused.value.status_code == 400
    assert refused.value.errors == {"serial": "configuration does not have a serial port"}
    fakepve.vm(VMID).config.pop("vga")
    fakepve.vm(VMID).config.pop("serial0")
    with pytest.raises(ResourceException):
        vm_api(api).termproxy.post()


def test_vncwebsocket_needs_the_port_of_the_proxy_call(api, fakepve, fakepve_cafile, secret):
    answer = vm_api(api).termproxy.post()
    with pytest.raises(InvalidStatus) as missing:
        open_websocket(fakepve, fakepve_cafile, secret, answer, port=None)
    assert missing.value.response.status_code == 400
    with pytest.raises(InvalidStatus) as out_of_range:
        open_websocket(fakepve, fakepve_cafile, secret, answer, port=6000)
    assert out_of_range.value.response.status_code == 400
    with pytest.raises(InvalidStatus) as nobody_listens:
        open_websocket(fakepve, fakepve_cafile, secret, answer, port=answer["port"] + 1)
    assert nobody_listens.value.response.status_code == 500


def test_a_wrong_ticket_is_refused_before_the_upgrade(api, fakepve, fakepve_cafile, secret):
    answer = vm_api(api).termproxy.post()
    with pytest.raises(InvalidStatus) as refused:
        open_websocket(fakepve, fakepve_cafile, secret, answer, vncticket="PVEVNC:forged")
    assert refused.value.response.status_code == 401


def test_the_terminal_shows_a_login_prompt_and_echoes_the_login_name(
    api, fakepve, fakepve_cafile, secret
):
    answer = vm_api(api).termproxy.post()
    with open_websocket(fakepve, fakepve_cafile, secret, answer) as ws:
        ws.send(f"{answer['user']}:{answer['ticket']}\n")
        assert ws.recv() == b"OK"
        assert ws.recv() == b"starting serial terminal on interface serial0\r\n"
        assert ws.recv().endswith(b"login: ")
        ws.send("0:4:root")
        assert ws.recv() == b"root"
        ws.send("1:80:24:")  # a resize: nothing comes back
        ws.send("0:1:\r")
        assert ws.recv() == b"\r\nPassword: "
        ws.send("0:6:secret")  # not echoed
        ws.send("0:1:\r")
        assert b"Login incorrect" in ws.recv()


def test_each_proxy_takes_one_connection(api, fakepve, fakepve_cafile, secret):
    answer = vm_api(api).termproxy.post()
    with open_websocket(fakepve, fakepve_cafile, secret, answer):
        pass
    with pytest.raises(InvalidStatus) as again:
        open_websocket(fakepve, fakepve_cafile, secret, answer)
    assert again.value.response.status_code == 401


def test_a_stopped_vm_has_no_terminal(api, fakepve, fakepve_cafile, secret):
    fakepve.vm(VMID).status = "stopped"
    answer = vm_api(api).termproxy.post()
    with open_websocket(fakepve, fakepve_cafile, secret, answer) as ws:
        ws.send(f"{answer['user']}:{answer['ticket']}\n")
        assert ws.recv() == b"OK"
        assert ws.recv() == f"VM {VMID} not running\r\n".encode()


def vnc_response(password: str, challenge: bytes) -> bytes:
    key = bytes(int(f"{b:08b}"[::-1], 2) for b in (password.encode() + bytes(8))[:8])
    return Cipher(TripleDES(key * 3), modes.ECB()).encryptor().update(challenge)


def test_the_screen_authenticates_with_the_ticket_and_stays(api, fakepve, fakepve_cafile, secret):
    answer = vm_api(api).vncproxy.post(websocket=1)
    with open_websocket(fakepve, fakepve_cafile, secret, answer) as ws:
        assert ws.recv() == b"RFB 003.008\n"
        ws.send(b"RFB 003.008\n")
        assert ws.recv() == b"\x01\x02"
        ws.send(b"\x02")
        ws.send(vnc_response(answer["ticket"], ws.recv()))
        assert ws.recv() == b"\x00\x00\x00\x00"
        ws.send(b"\x01")
        width, height = struct.unpack(">HH", ws.recv()[:4])
        assert (width, height) == (640, 400)
        ws.send(struct.pack(">BxHHHH", 3, 0, 0, width, height))  # a full update
        update = ws.recv()
        assert len(update) == 4 + 12 + width * height * 4
        ws.send(struct.pack(">BBxxI", 4, 1, 0x72))  # a key: the connection stays
        ws.send(struct.pack(">BxHHHH", 3, 0, 0, width, height))
        assert len(ws.recv()) == len(update)
    assert fakepve.vm(VMID).keys == [(1, 0x72)]


def test_a_wrong_vnc_password_is_refused(api, fakepve, fakepve_cafile, secret):
    answer = vm_api(api).vncproxy.post(websocket=1)
    with open_websocket(fakepve, fakepve_cafile, secret, answer) as ws:
        ws.recv()
        ws.send(b"RFB 003.008\n")
        ws.recv()
        ws.send(b"\x02")
        ws.send(vnc_response("PVEVNC:0", ws.recv()))
        assert ws.recv()[:4] == b"\x00\x00\x00\x01"

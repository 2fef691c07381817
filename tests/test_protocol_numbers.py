"""The numbers the protocol gives a meaning to are the same in the browser client and the server."""
import json
import pathlib
import re

from storage.schema import PacketType, PayStatus

PROTOCOL_JS = pathlib.Path(__file__).resolve().parent.parent / "static" / "js" / "protocol.js"


def js_constants() -> dict[str, dict[str, int]]:
    """`export const NAME = Object.freeze({...});` of static/js/protocol.js, as dicts."""
    found = re.findall(r"export const (\w+) = Object\.freeze\((\{[^}]*\})\);", PROTOCOL_JS.read_text())
    return {name: json.loads(re.sub(r"(\w+):", r'"\1":', body)) for name, body in found}


def test_the_browser_client_numbers_packets_as_the_server_does():
    assert js_constants() == {
        "PacketType": {t.name: t.value for t in PacketType},
        "PayStatus": {s.name: s.value for s in PayStatus},
    }


def test_an_exclusive_packet_is_type_4_on_both_sides():
    assert PacketType.EXCLUSIVE == 4 == js_constants()["PacketType"]["EXCLUSIVE"]

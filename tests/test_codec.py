"""The wire encodings: every frame encoded on its own, whatever came before it."""
import msgpack
import pytest

from rtserver import codec

FRAMES = [{"re": 1, "ok": True, "result": "ok", "money": "1.23", "into_account": True},
          {"ev": "message", "message": {"id": 7, "text": "你领取了张三的红包", "notice": None}},
          {"ev": "wallet", "balance": "0.00", "ledger_id": 2**40, "raw": b"\x00\xff"}]


@pytest.mark.parametrize("frame", FRAMES)
def test_a_frame_decodes_to_what_was_encoded(frame):
    for subprotocol in codec.SUBPROTOCOLS:
        if subprotocol == codec.JSON and "raw" in frame:
            continue  # bytes are msgpack's alone
        assert codec.decode(codec.encode(subprotocol, frame)) == frame


def test_frames_in_a_row_each_carry_only_themselves():
    encoded = [codec.encode(codec.MSGPACK, frame) for frame in FRAMES]
    assert [msgpack.unpackb(data, raw=False) for data in encoded] == FRAMES


def test_a_frame_that_cannot_be_encoded_leaves_nothing_behind_for_the_next():
    with pytest.raises(TypeError):
        codec.encode(codec.MSGPACK, {"ev": "message", "text": "半", "oops": object()})
    data = codec.encode(codec.MSGPACK, FRAMES[0])
    assert msgpack.unpackb(data, raw=False) == FRAMES[0]
    assert data == msgpack.packb(FRAMES[0], use_bin_type=True)

"""WebSocket frames (RFC 6455 §5) on Tornado's stream: read in bulk, written whole.

Tornado reads a frame in three reads (header, mask, payload). Each read that leaves bytes in
the stream's buffer makes the stream stop watching its socket, and the next one start again:
two system calls per frame, and half of what a busy server spent on reading. Here a connection
reads whatever has arrived at once and cuts it into frames itself; each whole message then goes
through Tornado's own handling (control frames, UTF-8, `on_message`), as before.
"""
import asyncio
import struct

from tornado.iostream import IOStream, SSLIOStream, StreamClosedError

from handlers.tornado_internals import WebSocketProtocol13, websocket_mask

FIN, RSV, RSV1, OPCODE, MASKED = 0x80, 0x70, 0x40, 0x0F, 0x80
CONTINUATION, CLOSE, PING = 0x0, 0x8, 0x9
CONTROL = 0x8  # the opcode bit every control frame (close, ping, pong) has
READ_SIZE = 64 * 1024  # the most one read takes from the stream
# A connection that sent this many bytes in frames since it last gave way lets the others have
# a turn of the event loop: a client's burst never holds up everyone else.
YIELD_AFTER_BYTES = 64 * 1024
FRAME_COST = 1024  # what a frame counts for in that, besides its bytes


class BulkFrameProtocol(WebSocketProtocol13):
    """Tornado's protocol with one read per burst of frames, not three per frame.

    It works with Tornado's state as Tornado's own reader does: each name it uses is listed,
    with why, in handlers/tornado_internals.py."""

    async def _receive_frame_loop(self) -> None:
        buffer = bytearray()
        work = 0
        try:
            while not self.client_terminated:
                buffer += await self.stream.read_bytes(READ_SIZE, partial=True)
                while not self.client_terminated:
                    used = await self._take_frame(buffer)
                    if not used:
                        break
                    del buffer[:used]
                    work += FRAME_COST + used
                    if work >= YIELD_AFTER_BYTES:  # within a burst: it may hold 10,000 frames
                        work = 0
                        await asyncio.sleep(0)
        except StreamClosedError:
            self._abort()
        finally:
            self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    async def _take_frame(self, data: bytearray) -> int:
        """Handle the frame at the start of `data`; return its size, 0 while it is incomplete.

        The checks are Tornado's, in its order: a frame Tornado would refuse is refused the same
        way (the connection aborted, or closed with 1009 when too big). One is added, which
        Tornado leaves out: a client's frame must be masked (else 1002)."""
        if len(data) < 2:
            return 0
        header, second = data[0], data[1]
        opcode, reserved = header & OPCODE, header & RSV
        if self._decompressor is not None and opcode != CONTINUATION:
            self._frame_compressed = bool(reserved & RSV1)
            reserved &= ~RSV1
        length, start = second & 0x7F, 2
        if reserved or (opcode & CONTROL and length >= 126):
            self._abort()
            return 0
        if length == 126:
            if len(data) < 4:
                return 0
            length, start = struct.unpack_from("!H", data, 2)[0], 4
        elif length == 127:
            if len(data) < 10:
                return 0
            length, start = struct.unpack_from("!Q", data, 2)[0], 10
        fragments = self._fragmented_message_buffer
        if length + (len(fragments) if fragments is not None else 0) > \
                self.params.max_message_size:
            self.close(1009, "message too big")
            self._abort()
            return 0
        if not second & MASKED:  # RFC 6455 §5.1: a server closes on an unmasked client frame
            self.close(1002, "client frames must be masked")
            self._abort()
            return 0
        mask, start = bytes(data[start:start + 4]), start + 4
        end = start + length
        if len(data) < end:
            return 0
        payload = websocket_mask(mask, bytes(data[start:end]))
        message = self._whole_message(header & FIN, opcode, payload)
        if message is not None and self._admit(message[0]):
            handled = self._handle_message(*message)
            if handled is not None:
                await handled
        return end

    def _admit(self, opcode: int) -> bool:
        """Whether to act on a whole message. Once the server has sent its close frame only the
        client's close counts (a client cut off for flooding may go on sending until it answers).
        A ping costs a request's token: answering pongs is work, and they pile up unsent for a
        client that does not read."""
        if self.server_terminated:
            return opcode == CLOSE
        return opcode != PING or self.handler.admit_ping()

    def _whole_message(self, final: int, opcode: int, payload: bytes):
        """(opcode, data) of a message this frame completes, or None; fragments are kept."""
        if opcode & CONTROL:
            if not final:  # control frames may not be fragmented
                self._abort()
                return None
            return opcode, payload
        if opcode == CONTINUATION:
            if self._fragmented_message_buffer is None:  # nothing to continue
                self._abort()
                return None
            self._fragmented_message_buffer.extend(payload)
            if not final:
                return None
            opcode, payload = self._fragmented_message_opcode, bytes(
                self._fragmented_message_buffer)
            self._fragmented_message_buffer = None
            return opcode, payload
        if self._fragmented_message_buffer is not None:  # a new message before the last ended
            self._abort()
            return None
        if not final:
            self._fragmented_message_opcode = opcode
            self._fragmented_message_buffer = bytearray(payload)
            return None
        return opcode, payload


def frame(data: bytes | str) -> bytes:
    """One final, unmasked WebSocket frame: text for a str, binary for bytes.

    Written straight to the stream, as Tornado writes its own when no compression was
    negotiated (rtserver offers none).
    """
    opcode = 0x2 if isinstance(data, bytes) else 0x1
    payload = data if isinstance(data, bytes) else data.encode()
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", FIN | opcode, size)
    elif size <= 0xFFFF:
        header = struct.pack("!BBH", FIN | opcode, 126, size)
    else:
        header = struct.pack("!BBQ", FIN | opcode, 127, size)
    return header + payload


def send_now(stream, data: bytes) -> int:
    """Hand `data` to the socket at once; return how many bytes it took (0 if none).

    Tornado's `write` makes a future (in Python 3.11 a getpid() system call) and goes through
    its buffer even when the socket could take everything at once, as it nearly always can.
    Only a plain socket's stream (the header gate's PrefacedStream is one) with nothing queued
    is written to here, so bytes keep their order; whatever the socket does not take, or any
    error, is left to the stream's own `write`. A TLS stream's bytes must go through TLS.
    """
    if not isinstance(stream, IOStream) or isinstance(stream, SSLIOStream) or \
            stream.writing() or stream.closed():
        return 0
    try:
        return stream.socket.send(data)
    except OSError:
        return 0

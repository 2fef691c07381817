// The two sub-protocols (docs/protocol.md): msgpack maps in binary frames, JSON objects in text frames.

export const MSGPACK = "rp.v1.msgpack";
export const JSON_PROTOCOL = "rp.v1.json";

/**
 * msgpack's library, or null where it cannot be had: `@msgpack/msgpack` as Node resolves it, or
 * as a page's import map names it. A page that cannot load it still speaks JSON.
 */
export async function loadMsgpack() {
  try {
    return await import("@msgpack/msgpack");
  } catch {
    return null;
  }
}

/**
 * The codec to speak: `choice` "msgpack" or "json", or "auto" for msgpack when its library is
 * there (the `msgpack` given, else the one found) and JSON otherwise.
 */
export async function chooseCodec(choice, msgpack) {
  if (choice === "json") return jsonCodec();
  const library = msgpack || (await loadMsgpack());
  if (library) return msgpackCodec(library);
  if (choice === "msgpack") throw new Error("rp.v1.msgpack needs @msgpack/msgpack (or the msgpack option)");
  return jsonCodec();
}

function msgpackCodec({ encode, decode }) {
  return {
    protocol: MSGPACK,
    encode: (frame) => encode(frame),
    // A server only ever sends binary frames on this protocol; text is read as JSON all the same.
    decode: (data) => (typeof data === "string" ? JSON.parse(data) : decode(new Uint8Array(data))),
  };
}

function jsonCodec() {
  return {
    protocol: JSON_PROTOCOL,
    encode: (frame) => JSON.stringify(frame),
    decode: (data) => JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data)),
  };
}

// OSC 1.0 messages in the browser: what the control surface sends over the WebSocket (binary frames) and
// decodes from it (value updates, replies). Types: i f s T F (and N, I on the way in).
"use strict";

const OSC = (() => {
  const enc = new TextEncoder(), dec = new TextDecoder();
  const pad = (n) => (n + 4) & ~3;  // a string with its NUL, padded to 4 bytes

  function encode(address, types, args) {
    const parts = [];
    let size = 0;
    const str = (s) => { const b = enc.encode(s); const p = new Uint8Array(pad(b.length)); p.set(b); parts.push(p); size += p.length; };
    str(address);
    str("," + types);
    for (let i = 0; i < types.length; i++) {
      const t = types[i], v = args[i];
      if (t === "i" || t === "f") {
        const b = new DataView(new ArrayBuffer(4));
        if (t === "i") b.setInt32(0, v | 0); else b.setFloat32(0, v);
        parts.push(new Uint8Array(b.buffer)); size += 4;
      } else if (t === "s") {
        str(String(v));
      } else if (t !== "T" && t !== "F" && t !== "N") {
        throw new Error("OSC type " + t + " is not sent by this page");
      }
    }
    const out = new Uint8Array(size);
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out.buffer;
  }

  function decode(buffer) {
    const bytes = new Uint8Array(buffer), view = new DataView(buffer);
    let at = 0;
    const str = () => {
      let end = at;
      while (end < bytes.length && bytes[end] !== 0) end++;
      const s = dec.decode(bytes.subarray(at, end));
      at = pad(end);
      return s;
    };
    const address = str();
    if (!address.startsWith("/")) throw new Error("not an OSC message");
    const types = at < bytes.length ? str() : ",";
    const args = [];
    for (const t of types.slice(1)) {
      if (t === "i") { args.push(view.getInt32(at)); at += 4; }
      else if (t === "f") { args.push(view.getFloat32(at)); at += 4; }
      else if (t === "s" || t === "S") args.push(str());
      else if (t === "T") args.push(true);
      else if (t === "F") args.push(false);
      else if (t === "N" || t === "I") args.push(null);
      else throw new Error("OSC type " + t + " not understood");
    }
    return { address, args };
  }

  return { encode, decode };
})();

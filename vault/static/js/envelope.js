// Envelope v1 on WebCrypto: the browser twin of vault/crypto/envelope.py (docs/api.md, "Exact
// formats"). Text form "v1." + base64url(nonce || AES-256-GCM ciphertext || tag), no padding;
// K is 32 random bytes as 43 base64url characters; the associated data
// "vault:v1:<kind>:<ticket>" binds an envelope to its ticket and kind. Both sides check the
// known-answer vectors in tests/vectors/envelope_v1.json.

export const KINDS = Object.freeze(["wordpress", "sftp", "other"]);
export const FIELDS = Object.freeze({
  wordpress: Object.freeze(["url", "username", "password", "note"]),
  sftp: Object.freeze(["host", "port", "username", "password", "private_key", "note"]),
  other: Object.freeze(["text"]),
});
export const MAX_ENVELOPE_CHARS = 65536;
const MIN_ENVELOPE_BYTES = 28;
const NONCE_BYTES = 12;
const KEY_BYTES = 32;
const TICKET_RE = /^[A-Za-z0-9_-]{1,64}$/;
const B64URL_RE = /^[A-Za-z0-9_-]*$/;

// One error for every cause (wrong key, tampering, wrong ticket or kind, bad text): its message
// never holds the key, the envelope or the plaintext, and it does not say which check failed.
export class InvalidEnvelope extends Error {
  constructor() {
    super("invalid envelope");
    this.name = "InvalidEnvelope";
  }
}

export function hasWebCrypto() {
  return Boolean(globalThis.isSecureContext && globalThis.crypto && globalThis.crypto.subtle);
}

export function b64urlEncode(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// Canonical base64url without padding, as in vault/crypto/b64.py: a text decodes only if
// encoding its bytes again gives the same text. Throws InvalidEnvelope otherwise.
export function b64urlDecode(text) {
  if (typeof text !== "string" || !B64URL_RE.test(text) || text.length % 4 === 1) {
    throw new InvalidEnvelope();
  }
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  let binary;
  try {
    binary = atob(padded);
  } catch {
    throw new InvalidEnvelope();
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  if (b64urlEncode(bytes) !== text) throw new InvalidEnvelope();
  return bytes;
}

export function generateKey() {
  return b64urlEncode(crypto.getRandomValues(new Uint8Array(KEY_BYTES)));
}

export function isKey(key) {
  try {
    return typeof key === "string" && key.length === 43 && b64urlDecode(key).length === KEY_BYTES;
  } catch {
    return false;
  }
}

function associatedData(kind, ticket) {
  // Not Object.hasOwn: Safari has it only from 15.4, and an older iPhone must still encrypt.
  if (!Object.prototype.hasOwnProperty.call(FIELDS, kind)) throw new TypeError("unknown kind");
  if (typeof ticket !== "string" || !TICKET_RE.test(ticket)) throw new TypeError("bad ticket");
  return new TextEncoder().encode(`vault:v1:${kind}:${ticket}`);
}

async function importKey(key, usage) {
  if (!isKey(key)) throw new TypeError("key must be 43 base64url characters");
  return crypto.subtle.importKey("raw", b64urlDecode(key), { name: "AES-GCM" }, false, [usage]);
}

// The plaintext exactly as Python writes it: json.dumps(fields, ensure_ascii=False,
// separators=(",", ":"), sort_keys=True), empty fields left out.
export function plaintextOf(kind, fields) {
  const allowed = FIELDS[kind];
  const present = {};
  for (const name of Object.keys(fields).sort()) {
    const value = fields[name];
    if (typeof value !== "string") throw new TypeError("field values must be strings");
    if (!allowed.includes(name)) throw new TypeError(`unknown field for ${kind}`);
    if (value) present[name] = value;
  }
  if (!/^[^\uD800-\uDFFF]*$/u.test(Object.values(present).join(""))) {
    throw new TypeError("field values must be valid Unicode text");
  }
  return JSON.stringify(present);
}

// Only for the known-answer tests: real sealing never chooses its nonce.
export async function _sealWithNonce(key, nonce, { ticket, kind, plaintext }) {
  const aad = associatedData(kind, ticket);
  const cryptoKey = await importKey(key, "encrypt");
  const sealed = new Uint8Array(await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, cryptoKey,
    new TextEncoder().encode(plaintext)));
  const out = new Uint8Array(nonce.length + sealed.length);
  out.set(nonce, 0);
  out.set(sealed, nonce.length);
  return "v1." + b64urlEncode(out);
}

export async function seal(key, { ticket, kind, fields }) {
  const plaintext = plaintextOf(kind, fields);
  const text = await _sealWithNonce(key, crypto.getRandomValues(new Uint8Array(NONCE_BYTES)),
    { ticket, kind, plaintext });
  if (text.length > MAX_ENVELOPE_CHARS) throw new RangeError("too large");
  return text;
}

export async function open(key, text, { ticket, kind }) {
  let raw, aad, cryptoKey;
  try {
    if (typeof text !== "string" || text.length > MAX_ENVELOPE_CHARS || !text.startsWith("v1.")) {
      throw new InvalidEnvelope();
    }
    raw = b64urlDecode(text.slice(3));
    if (raw.length < MIN_ENVELOPE_BYTES) throw new InvalidEnvelope();
    aad = associatedData(kind, ticket);
    cryptoKey = await importKey(key, "decrypt");
  } catch {
    throw new InvalidEnvelope();
  }
  let data;
  try {
    data = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: raw.subarray(0, NONCE_BYTES), additionalData: aad, tagLength: 128 },
      cryptoKey, raw.subarray(NONCE_BYTES));
  } catch {
    throw new InvalidEnvelope();
  }
  let plaintext = "";
  let value = null;
  try {
    // ignoreBOM keeps a leading BOM, which JSON refuses, as Python's json.loads does.
    plaintext = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(data);
    value = JSON.parse(plaintext);
  } catch {
    value = null;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new InvalidEnvelope();
  const allowed = FIELDS[kind];
  const fields = {};
  for (const [name, field] of Object.entries(value)) {
    if (!allowed.includes(name) || typeof field !== "string") throw new InvalidEnvelope();
    fields[name] = field;
  }
  // JSON.parse keeps the last of repeated names; Python refuses them. A flat object of strings
  // holds exactly two string literals per member, so any repeat shows up in the count.
  const literals = plaintext.match(/"(?:[^"\\]|\\.)*"/g) || [];
  if (literals.length !== 2 * Object.keys(fields).length) throw new InvalidEnvelope();
  return fields;
}

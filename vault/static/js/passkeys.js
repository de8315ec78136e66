// Passkeys with the browser's own WebAuthn (navigator.credentials), no library: vault's options
// arrive as JSON with their binary fields in base64url, and the browser's answer goes back the
// same way (the JSON forms of WebAuthn Level 3, written out here for browsers without
// PublicKeyCredential.parseCreationOptionsFromJSON or toJSON).

function encode(buffer) {
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (let i = 0; i < bytes.length; i += 1) text += String.fromCharCode(bytes[i]);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function decode(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  const raw = atob(base64);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes.buffer;
}

const descriptors = (list) => (list || []).map((c) => ({ ...c, id: decode(c.id) }));

export function supported() {
  return Boolean(window.PublicKeyCredential && navigator.credentials
    && navigator.credentials.create && navigator.credentials.get);
}

// Whether the browser offers passkeys in a field's autofill (conditional mediation).
export async function autofillAvailable() {
  try {
    return supported() && typeof PublicKeyCredential.isConditionalMediationAvailable === "function"
      && await PublicKeyCredential.isConditionalMediationAvailable();
  } catch {
    return false;
  }
}

function answer(credential, fields) {
  const response = {};
  for (const [name, value] of Object.entries(fields)) {
    if (value) response[name] = encode(value);
  }
  return {
    id: credential.id,
    rawId: encode(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment || undefined,
    clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
    response,
  };
}

// navigator.credentials.create() for vault's registration options; its answer as JSON.
export async function create(options) {
  const publicKey = {
    ...options,
    challenge: decode(options.challenge),
    user: { ...options.user, id: decode(options.user.id) },
    excludeCredentials: descriptors(options.excludeCredentials),
  };
  const credential = await navigator.credentials.create({ publicKey });
  const r = credential.response;
  const json = answer(credential, { clientDataJSON: r.clientDataJSON, attestationObject: r.attestationObject });
  if (r.getTransports) json.response.transports = r.getTransports();
  return json;
}

// navigator.credentials.get() for vault's sign-in options; its answer as JSON. `mediation`
// "conditional" waits for the person to pick a passkey in the username field's autofill.
export async function get(options, { mediation, signal } = {}) {
  const publicKey = {
    ...options,
    challenge: decode(options.challenge),
    allowCredentials: descriptors(options.allowCredentials),
  };
  const request = { publicKey, signal };
  if (mediation) request.mediation = mediation;
  const credential = await navigator.credentials.get(request);
  const r = credential.response;
  return answer(credential, {
    clientDataJSON: r.clientDataJSON, authenticatorData: r.authenticatorData,
    signature: r.signature, userHandle: r.userHandle,
  });
}

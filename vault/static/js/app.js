// The page scripts: one small module, no framework. Every sentence comes from the page
// (data-messages, in the page's language); keys and plaintext live only in this page's memory
// and the DOM while shown, never in storage, cookies or a URL sent to the server.
import * as envelope from "./envelope.js";
import * as passkeys from "./passkeys.js";

const M = JSON.parse(document.body.dataset.messages || "{}");
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
const fmt = (text, values) => text.replace(/\{(\w+)\}/g, (_, name) => values[name] ?? "");
const TICKET_RE = /^[A-Za-z0-9_-]{1,64}$/;

function csrfToken() {
  const meta = $('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// One JSON call to vault's API. Never throws: a network failure is status 0.
async function api(method, path, body, extraHeaders = {}) {
  const headers = { Accept: "application/json", ...extraHeaders };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const token = csrfToken();
  if (token) headers["X-CSRF-Token"] = token;
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store", redirect: "error",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return { status: 0, body: {} };
  }
  let data = {};
  if (resp.status !== 204) {
    try { data = await resp.json(); } catch { data = {}; }
  }
  return { status: resp.status, body: data, retryAfter: resp.headers.get("Retry-After") };
}

function when(iso) {
  if (!iso) return "";
  try {
    return new Intl.DateTimeFormat(document.documentElement.lang || undefined,
      { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
  } catch {
    return iso;
  }
}

// The sentence for a problem the API answered, in the page's language. `forbidden` words a 403
// for the action at hand (a reveal's 403 means "not the assignee").
function problemText(res, forbidden = M.not_allowed) {
  const reason = res.body && res.body.reason;
  switch (res.status) {
    case 0: case 502: case 503: case 504: return M.unavailable;
    case 429: return M.rate_limited + (res.retryAfter ? " " + fmt(M.wait_seconds, { seconds: res.retryAfter }) : "");
    case 413: return M.too_large;
    case 404: return M.not_found;
    case 401: return M.session_over;
    case 403: return reason === "csrf" ? M.csrf : forbidden;
    case 409:
      if (reason === "ticket-closed") return M.ticket_closed;
      if (reason === "ticket-full") return M.ticket_full;
      if (reason === "already-filled") return M.already_filled;
      return M.failed;
    case 410:
      if (reason === "revealed") {
        return fmt(M.gone_revealed, { who: res.body.revealed_by || "?", when: when(res.body.revealed_at) });
      }
      return M["gone_" + reason] || M.gone;
    default: return M.failed;
  }
}

function say(element, text, kind = "") {
  if (!element) return;
  element.hidden = !text;
  element.classList.remove("error", "ok", "info");
  if (kind) element.classList.add(kind);
  if (text && element.textContent === text) {
    // The same words again (a second "Copied."): empty the live region first so it is heard.
    element.textContent = "";
    requestAnimationFrame(() => { element.textContent = text; });
  } else {
    element.textContent = text;
  }
}

// A problem the person must read: said in the form's alert, which takes the focus (the
// button that had it is disabled while busy).
function fail(form, text) {
  const alert = $("#form-error", form);
  say(alert, text, "error");
  alert.focus();
}

// -- form fields ----------------------------------------------------------------------------

function setFieldError(input, text) {
  const error = document.getElementById(input.id + "-error");
  input.setAttribute("aria-invalid", text ? "true" : "false");
  if (error) { error.textContent = text; error.hidden = !text; }
}

function clearErrors(form) {
  $$("[data-field]", form).forEach((input) => setFieldError(input, ""));
  say($("#form-error", form), "");
}

function showErrors(form, errors) {
  // errors: [[input, text], ...]; the first invalid field gets the focus.
  errors.forEach(([input, text]) => setFieldError(input, text));
  say($("#form-error", form), M.fix_fields, "error");
  if (errors.length) errors[0][0].focus();
}

function chosenKind(form) {
  const checked = $('input[name="kind"]:checked', form);
  return checked ? checked.value : "wordpress";
}

function setupKinds(form) {
  const show = () => {
    const kind = chosenKind(form);
    $$(".kind-fields", form).forEach((set) => { set.hidden = set.dataset.kind !== kind; });
  };
  $$('input[name="kind"]', form).forEach((radio) => radio.addEventListener("change", show));
  show();
}

// The chosen kind's fields exactly as typed (no trimming: a password may end in a space), and
// the problems found. Empty optional fields are left out by the envelope module.
function readCredentials(form) {
  const kind = chosenKind(form);
  const set = $(`.kind-fields[data-kind="${kind}"]`, form);
  const fields = {};
  const errors = [];
  $$("[data-field]", set).forEach((input) => {
    fields[input.dataset.field] = input.value;
    if (input.dataset.required && !input.value.trim()) errors.push([input, M.required]);
  });
  if (kind === "sftp") {
    const port = $("#f-sftp-port", set);
    const value = port.value.trim();
    if (value && !(/^[0-9]{1,5}$/.test(value) && Number(value) >= 1 && Number(value) <= 65535)) {
      errors.push([port, M.bad_port]);
    }
    const password = $("#f-sftp-password", set);
    if (!password.value && !$("#f-sftp-private_key", set).value.trim()) errors.push([password, M.required]);
  }
  return { kind, fields, errors };
}

function busy(form, on, text = "") {
  const button = $('button[type="submit"]', form);
  if (button) button.disabled = on;
  form.setAttribute("aria-busy", on ? "true" : "false");
  say($("#form-status", form), text);
}

function showDone(form, section) {
  form.reset();
  form.hidden = true;
  section.hidden = false;
  section.focus();
}

function keyFromFragment(pattern) {
  let value = "";
  try {
    value = decodeURIComponent(location.hash.slice(1));
  } catch {
    return "";  // a mangled fragment is a missing key, not a crash
  }
  return pattern(value) ? value : "";
}

// -- customer: share (/) and fill (/r/<id>) -------------------------------------------------------

// Encrypt the fields under `key` and post the envelope with `body`: the API's answer, or null
// when the fields could not be sealed (the form says so already).
async function sealAndSend(form, { key, ticket, kind, fields }, path, body = {}) {
  busy(form, true, M.encrypting);
  let sealed;
  try {
    sealed = await envelope.seal(key, { ticket, kind, fields });
  } catch {
    busy(form, false);
    fail(form, M.too_large);
    return null;
  }
  busy(form, true, M.sending);
  const res = await api("POST", path, { ...body, kind, envelope: sealed });
  busy(form, false);
  return res;
}

function manageLink(secretId, token) {
  return new URL("/m/" + secretId, location.origin).href + "#" + token;
}

function setupShare() {
  const form = $("#share-form");
  setupKinds(form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!envelope.hasWebCrypto()) return fail(form, M.no_crypto);
    const ticketInput = $("#f-ticket", form);
    const ticket = ticketInput.value.trim();
    const { kind, fields, errors } = readCredentials(form);
    if (!ticket) errors.unshift([ticketInput, M.required]);
    else if (!TICKET_RE.test(ticket)) errors.unshift([ticketInput, M.bad_ticket]);
    if (errors.length) return showErrors(form, errors);
    const key = envelope.generateKey();
    const res = await sealAndSend(form, { key, ticket, kind, fields }, "/api/v1/secrets", { ticket });
    if (res === null) return;
    if (res.status !== 201) {
      if (res.status === 400 && (res.body.invalid_params || []).some((p) => p.name === "ticket")) {
        return showErrors(form, [[ticketInput, M.bad_ticket]]);
      }
      return fail(form, problemText(res));
    }
    const done = $("#share-done");
    $("#share-done-title").textContent = fmt(M.sent_for_ticket, { ticket });
    $("#share-link").value = res.body.url + "#" + key;
    $("#manage-link").value = manageLink(res.body.id, res.body.manage_token);
    showDone(form, done);
  });
}

function setupFill() {
  const form = $("#fill-form");
  setupKinds(form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!envelope.hasWebCrypto()) return fail(form, M.no_crypto);
    const key = keyFromFragment(envelope.isKey);
    if (!key) return fail(form, M.no_key);
    const { kind, fields, errors } = readCredentials(form);
    if (errors.length) return showErrors(form, errors);
    const res = await sealAndSend(form, { key, ticket: form.dataset.ticket, kind, fields },
      `/api/v1/requests/${form.dataset.requestId}/secret`);
    if (res === null) return;
    if (res.status !== 201) return fail(form, problemText(res));
    $("#manage-link").value = manageLink(res.body.secret_id, res.body.manage_token);
    showDone(form, $("#fill-done"));
  });
}

// -- agent: reveal (/s/<id>, /r/<id>) --------------------------------------------------------------

function showFields(fields, kind) {
  const list = $("#revealed-fields");
  const labels = $("#field-labels").dataset;
  const template = $("#field-row");
  list.replaceChildren();
  for (const name of envelope.FIELDS[kind]) {
    if (!(name in fields)) continue;
    const row = template.content.firstElementChild.cloneNode(true);
    $("dt", row).textContent = labels[name] || name;
    $("button .visually-hidden", row).textContent = ": " + (labels[name] || name);
    $("pre", row).textContent = fields[name];
    $("button", row).addEventListener("click", () => copyText(fields[name] ?? "", $("pre", row)));
    list.append(row);
  }
}

function setupReveal() {
  const section = $("#reveal");
  if (!section) return;
  const loginLink = $("#login-to-reveal");
  if (loginLink) {
    // The key stays in the fragment across the login page, so the link still opens afterwards.
    loginLink.href = loginLink.getAttribute("href") + location.hash;
    return;
  }
  const button = $("#reveal-button");
  const status = $("#reveal-status");
  if (!button) return;
  button.addEventListener("click", async () => {
    if (!envelope.hasWebCrypto()) return say(status, M.no_crypto, "error");
    const key = keyFromFragment(envelope.isKey);
    // Checked before the reveal: without the key the envelope would be consumed for nothing.
    if (!key) return say(status, M.no_key, "error");
    button.disabled = true;
    say(status, M.revealing, "info");
    const id = section.dataset.secretId;
    const res = await api("POST", `/api/v1/secrets/${id}/reveal`, {});
    if (res.status !== 200) {
      button.disabled = res.status === 410 || res.status === 404;
      if (res.status === 410) button.hidden = true;
      say(status, problemText(res, M.not_assignee), "error");
      return status.focus();
    }
    let fields;
    try {
      // The page knows the ticket and kind it showed; an answer for another one is refused.
      if (res.body.ticket !== section.dataset.ticket || res.body.kind !== section.dataset.kind) {
        throw new envelope.InvalidEnvelope();
      }
      fields = await envelope.open(key, res.body.envelope, { ticket: res.body.ticket, kind: res.body.kind });
    } catch {
      // No acknowledgement: the envelope stays for this session during the grace window.
      button.disabled = false;
      say(status, M.invalid_envelope, "error");
      return status.focus();
    }
    showFields(fields, res.body.kind);
    fields = null;
    let ack = await api("POST", `/api/v1/secrets/${id}/ack`, {});
    if (ack.status !== 204) ack = await api("POST", `/api/v1/secrets/${id}/ack`, {});
    section.hidden = true;
    const state = $("#state");
    if (state) {
      state.className = "state state-revealed";
      state.textContent = ack.status === 204 ? M.revealed_now : M.ack_failed;
    }
    const shown = $("#revealed");
    shown.hidden = false;
    shown.focus();
  });
  const forget = () => { $("#revealed-fields").replaceChildren(); };
  $("#hide-button").addEventListener("click", () => {
    forget();
    $("#revealed").hidden = true;
    say($("#state"), M.hidden);
    $("#state").focus();
  });
  // Leaving the page (or putting it in the back/forward cache) takes the fields with it.
  window.addEventListener("pagehide", forget);
}

// -- customer: manage link (/m/<id>) ----------------------------------------------------------------

function setupManage() {
  const section = $("#manage");
  if (!section) return;
  const status = $("#manage-status");
  const button = $("#delete-button");
  button.addEventListener("click", async () => {
    const token = keyFromFragment((value) => /^vm_[A-Za-z0-9_-]{43}$/.test(value));
    if (!token) return say(status, M.no_key, "error");
    button.disabled = true;
    say(status, M.deleting, "info");
    const res = await api("DELETE", `/api/v1/secrets/${section.dataset.secretId}`, undefined,
      { "X-Manage-Token": token });
    if (res.status === 204) {
      button.hidden = true;
      const state = $("#state");
      state.className = "state state-gone reason-deleted";
      state.textContent = M.deleted;
      say(status, "");
      return state.focus();
    }
    button.disabled = res.status === 410;
    say(status, res.status === 403 ? M.forbidden_manage : problemText(res), "error");
    status.focus();
  });
}

// -- agent: login, new request ------------------------------------------------------------------

function setupLogin() {
  // The login page's form, and the "sign in again" card of the pages that ask for a recent
  // sign-in before a sensitive change (the same call: it replaces this browser's session).
  [$("#login-form"), $("#reauth-form")].filter(Boolean).forEach(setupSignInForm);
  setupPasskeySignIn();
}

function setupSignInForm(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const email = $('[data-field="email"]', form);
    const password = $('[data-field="password"]', form);
    const totp = $('[data-field="totp"]', form);
    const errors = [];
    if (!email.value.trim()) errors.push([email, M.required]);
    if (!password.value) errors.push([password, M.required]);
    if (errors.length) return showErrors(form, errors);
    busy(form, true);
    const body = { email: email.value.trim(), password: password.value };
    const code = totp.value.replace(/\s+/g, "");  // "123 456" as apps show it
    if (code) body.totp = code;
    const res = await api("POST", "/api/v1/session", body);
    busy(form, false);
    if (res.status === 200) {
      password.value = "";
      location.assign((form.dataset.next || "/dashboard") + location.hash);
      return;
    }
    const reason = res.body.reason;
    if (res.status === 401 && reason === "totp-required") return showErrors(form, [[totp, M.login_code]]);
    if (res.status === 401 && reason === "totp-invalid") return showErrors(form, [[totp, M.login_code_invalid]]);
    let text = res.status === 401 || res.status === 400 ? M.login_failed : problemText(res);
    if (res.status === 401 && reason === "2fa-required") text = M.login_2fa_required;
    if (res.status === 403 && reason === "sso-only") text = M.login_sso_only;
    if (res.status === 401 && reason === "passkey-required") text = M.passkey_required;
    say($("#form-error", form), text, "error");
    password.focus();  // the alert is read out; the next attempt starts at the password
  });
}

// -- passkeys ------------------------------------------------------------------------------------

// Sign in with a passkey: the buttons (login page, "sign in again" card) and, on the login page,
// the browser's passkey autofill in the e-mail field where it offers one.
function setupPasskeySignIn() {
  const buttons = $$("button[data-passkey-sign-in]");
  if (!buttons.length || !passkeys.supported()) return;
  let pending = null;  // the autofill's request, cancelled when a button starts another
  const signIn = async (next, { mediation, signal } = {}) => {
    const options = await api("POST", "/api/v1/passkeys/sign-in/options", {});
    if (options.status !== 200) return options;
    let credential;
    try {
      credential = await passkeys.get(options.body.publicKey, { mediation, signal });
    } catch (error) {
      return { status: -1, name: error && error.name };
    }
    const res = await api("POST", "/api/v1/passkeys/sign-in", { credential });
    if (res.status === 200) location.assign((next || "/dashboard") + location.hash);
    return res;
  };
  buttons.forEach((button) => {
    const card = $("#passkey-sign-in");
    if (card) card.hidden = false;
    button.hidden = false;
    const alert = document.getElementById(button.dataset.error);
    button.addEventListener("click", async () => {
      if (pending) pending.abort();
      say(alert, "");
      button.disabled = true;
      const res = await signIn(button.dataset.next);
      button.disabled = false;
      if (res.status === 200) return;
      say(alert, res.status === -1 || res.status === 401 || res.status === 403 ? M.passkey_failed : problemText(res), "error");
      alert.focus();
    });
  });
  const field = $('#login-form input[autocomplete~="webauthn"]');
  if (!field) return;
  passkeys.autofillAvailable().then(async (available) => {
    if (!available) return;
    pending = new AbortController();
    const res = await signIn(field.form.dataset.next, { mediation: "conditional", signal: pending.signal });
    // Cancelled (a button took over, or the person typed a password instead): nothing to say.
    if (res.status === 401 || res.status === 403) say($("#form-error", field.form), M.passkey_failed, "error");
  });
}

// Add a passkey on the account page: name it, let the device make it, keep it.
function setupPasskeyRegistration() {
  const form = $("#passkey-form");
  if (!form || !passkeys.supported()) return;
  form.hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const name = $('[data-field="name"]', form);
    if (!name.value.trim()) return showErrors(form, [[name, M.required]]);
    busy(form, true);
    const options = await api("POST", "/api/v1/passkeys/options", {});
    let res = options;
    if (options.status === 200) {
      let credential = null;
      try {
        credential = await passkeys.create(options.body.publicKey);
      } catch {
        res = { status: -1, body: {} };
      }
      if (credential) res = await api("POST", "/api/v1/passkeys", { name: name.value.trim(), credential });
    }
    busy(form, false);
    if (res.status === 201) {
      location.assign("/account?done=passkey-added");
      return;
    }
    if (res.status === 403 && res.body.reason === "reauth") {
      location.reload();  // the page asks to sign in again first
      return;
    }
    fail(form, res.status === -1 || res.status === 400 || res.status === 409 ? M.passkey_not_added : problemText(res));
  });
}

function setupNewRequest() {
  const form = $("#request-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!envelope.hasWebCrypto()) return fail(form, M.no_crypto);
    const ticketInput = $("#f-ticket", form);
    const ticket = ticketInput.value.trim();
    const note = $("#f-note", form).value.trim();
    if (!ticket) return showErrors(form, [[ticketInput, M.required]]);
    if (!TICKET_RE.test(ticket)) return showErrors(form, [[ticketInput, M.bad_ticket]]);
    busy(form, true, M.sending);
    const body = note ? { ticket, note } : { ticket };
    const res = await api("POST", "/api/v1/requests", body);
    busy(form, false);
    if (res.status !== 201) return fail(form, problemText(res));
    // The key is made here and only ever written into the link's fragment.
    const link = res.body.url + "#" + envelope.generateKey();
    const done = $("#request-done");
    $("#request-done-title").textContent = fmt(M.ready_for_ticket, { ticket: res.body.ticket });
    $("#request-link").value = link;
    $("#request-sentence").value = fmt(done.dataset.sentence, { link });
    $("#done-ticket-link").href = "/tickets/" + encodeURIComponent(res.body.ticket);
    showDone(form, done);
    fitTexts();
  });
}

// -- everywhere --------------------------------------------------------------------------------

// The read-only texts to read whole (a sentence, a key to type): as tall as their text where
// the stylesheet cannot say so (CSS field-sizing), again when the width changes.
function fitTexts() {
  if (CSS.supports("field-sizing", "content")) return;
  $$(".copy-row textarea").filter((area) => area.offsetParent !== null).forEach((area) => {
    area.style.height = "auto";
    area.style.height = area.scrollHeight + area.offsetHeight - area.clientHeight + "px";
  });
}

async function copyText(text, selectable) {
  const status = $("#copy-status");
  try {
    await navigator.clipboard.writeText(text);
    say(status, M.copied, "ok");
  } catch {
    if (selectable && selectable.select) selectable.select();
    say(status, M.copy_failed, "error");
  }
}

function setupCopyButtons() {
  $$("button.copy[data-copy]").forEach((button) => {
    button.addEventListener("click", () => {
      const input = document.getElementById(button.dataset.copy);
      copyText(input.value, input);
    });
  });
}

function setupLanguageLinks() {
  // Keep the fragment (a link's key) when switching language: the server's redirect keeps it.
  $$(".lang a[hreflang]").forEach((link) => {
    link.addEventListener("click", () => {
      const target = new URL(link.getAttribute("href"), location.href);
      target.hash = location.hash;
      link.href = target.href;
    });
  });
  // The menu closes as a menu does: with Escape (back to its button) or a click elsewhere.
  const menu = $("details.lang");
  if (!menu) return;
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !menu.open) return;
    menu.open = false;
    $("summary", menu).focus();
  });
  document.addEventListener("click", (event) => {
    if (menu.open && !menu.contains(event.target)) menu.open = false;
  });
}

const pages = {
  share: setupShare, fill: setupFill, status: () => { setupReveal(); }, manage: setupManage,
  login: setupLogin, "new-request": setupNewRequest,
  account: () => { setupLogin(); setupPasskeyRegistration(); },
  "admin-agents": setupLogin, "admin-keys": setupLogin,
};
function warnWithoutWebCrypto() {
  // Said at once, not at the first submit: over plain HTTP (not loopback) there is no WebCrypto.
  if (envelope.hasWebCrypto() || !["share", "fill", "status", "new-request"].includes(document.body.dataset.page)) return;
  const alert = document.createElement("p");
  alert.className = "alert error";
  alert.setAttribute("role", "alert");
  alert.id = "no-crypto";
  alert.textContent = M.no_crypto;
  $("main").prepend(alert);
}

warnWithoutWebCrypto();
setupLanguageLinks();
setupCopyButtons();
fitTexts();
window.addEventListener("resize", fitTexts);
(pages[document.body.dataset.page] || (() => {}))();

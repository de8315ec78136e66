// A real OpenID Provider for vault's tests: panva's oidc-provider (OpenID Certified), installed
// from the npm registry by scripts/test into .cache/oidc, run by node on a loopback port.
//
//   node tests/oidc/provider.mjs CONFIG.json
//
// CONFIG: {"issuer", "port", "clients": [...], "accounts": {login: claims}, "jwks": {keys},
//          "conformIdTokenClaims": bool}.
// Sign-in uses the provider's development interactions (a login form that takes any password,
// then a consent button); the account is the login typed, its claims come from "accounts".
// With "conformIdTokenClaims" false the scope's claims go into the ID token too (as Google,
// Entra ID and Keycloak put them); true is the provider's own, conformant default (OpenID
// Connect Core 5.4): the ID token of the code flow carries `sub` alone, the claims are at
// UserInfo (/me), as Zitadel and Authelia give them. A client registered with
// userinfo_signed_response_alg gets UserInfo as a signed JWT (application/jwt).
//
// One addition for the refusal tests, and only for them: POST /__test__/tamper {"mode": ...}
// makes the *next* token response's ID token one that vault must refuse, re-signed with the
// provider's own key or another one, standing in for a token forged or replayed on the way:
//   "other-key"   the same claims, signed by a key the provider does not publish (same kid)
//   "unknown-kid" the same, under a kid the provider does not publish
//   "wrong-nonce" signed by the provider's key, with another nonce
//   "expired"     signed by the provider's key, expired an hour ago
//   "claims"      signed by the provider's key, with {"claims": {...}} over its own (null
//                 removes one)
// or makes the token endpoint itself answer otherwise, after it has handled the request (so the
// code is spent as it would be):
//   "answer"      {"status", "type", "body"} instead of its own answer (a gateway's error page,
//                 an OAuth error, a body that is no JSON)
//   "slow"        its own answer, {"seconds"} late
// or makes the next UserInfo answer another one, after the provider has handled the request:
//   "userinfo-claims" {"claims": {...}} over its own (null removes one); a signed answer is
//                 signed again, by the provider's key or, with {"key": "other"}, another one
//   "userinfo-answer" {"status", "type", "body", "headers"} instead of its own
//   "userinfo-slow"   its own answer, {"seconds"} late
//   "userinfo-drop"   no answer: the connection is closed
// or the next discovery document another one: "discovery" {"claims": {...}} (null removes).
// Each of these waits for its own next request (token, UserInfo, discovery); {"mode": null}
// clears them all. GET /__test__/requests answers how often the JWKS, the discovery document
// and UserInfo were asked, and the access token UserInfo was last asked with.
import fs from 'node:fs';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const accounts = config.accounts;
let tamper = null;
let userinfoTamper = null;
let discoveryTamper = null;
let jwksRequests = 0;
let discoveryRequests = 0;
let userinfoRequests = 0;
let userinfoToken = '';  // the last access token UserInfo was asked with (a log must not hold it)

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: config.jwks,
  findAccount: async (ctx, id) => ({
    accountId: id,
    async claims() {
      return { sub: id, ...(accounts[id] || { email: id, email_verified: true }) };
    },
  }),
  claims: { openid: ['sub'], email: ['email', 'email_verified', 'xms_edov'], profile: ['name'] },
  // false: the scope's claims go into the ID token too; true: UserInfo only (header above).
  conformIdTokenClaims: config.conformIdTokenClaims === true,
  pkce: { required: () => true },
  ttl: {
    AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600,
    Grant: 3600,
  },
  features: { devInteractions: { enabled: true }, jwtUserinfo: { enabled: true } },
  cookies: { keys: ['vault-tests-only-cookie-key'] },
});
provider.proxy = false;

function overwrite(claims, changes) {
  for (const [name, value] of Object.entries(changes)) {
    if (value === null) delete claims[name]; else claims[name] = value;
  }
}

async function resigned(token, changes, otherKey) {
  const claims = jose.decodeJwt(token);
  const header = jose.decodeProtectedHeader(token);
  overwrite(claims, changes);
  const key = otherKey ? (await jose.generateKeyPair(header.alg)).privateKey
    : await jose.importJWK(config.jwks.keys[0], header.alg);
  return new jose.SignJWT(claims).setProtectedHeader({ alg: header.alg, kid: header.kid })
    .sign(key);
}

async function tamperUserinfo(ctx) {
  const asked = userinfoTamper;
  userinfoTamper = null;
  if (asked.mode === 'userinfo-answer') {
    ctx.status = asked.status;
    ctx.type = asked.type;
    ctx.body = asked.body;
    for (const [name, value] of Object.entries(asked.headers || {})) ctx.set(name, value);
  } else if (asked.mode === 'userinfo-slow') {
    await new Promise((resolve) => { setTimeout(resolve, asked.seconds * 1000); });
  } else if (asked.mode === 'userinfo-claims' && typeof ctx.body === 'string') {
    ctx.body = await resigned(ctx.body, asked.claims, asked.key === 'other');
  } else if (asked.mode === 'userinfo-claims') {
    const claims = { ...ctx.body };
    overwrite(claims, asked.claims);
    ctx.body = claims;
  }
}

async function tampered(idToken) {
  const claims = jose.decodeJwt(idToken);
  const header = jose.decodeProtectedHeader(idToken);
  const own = await jose.importJWK(config.jwks.keys[0], header.alg);
  const now = Math.floor(Date.now() / 1000);
  let key = own;
  let kid = header.kid;
  const mode = tamper.mode;
  if (mode === 'other-key' || mode === 'unknown-kid') {
    key = (await jose.generateKeyPair(header.alg)).privateKey;
    if (mode === 'unknown-kid') kid = 'not-published';
  } else if (mode === 'wrong-nonce') {
    claims.nonce = 'a-nonce-vault-never-sent';
  } else if (mode === 'expired') {
    claims.iat = now - 7200;
    claims.exp = now - 3600;
  } else if (mode === 'claims') {
    overwrite(claims, tamper.claims);
  }
  return new jose.SignJWT(claims).setProtectedHeader({ alg: header.alg, kid }).sign(key);
}

provider.use(async (ctx, next) => {
  if (ctx.path === '/__test__/tamper' && ctx.method === 'POST') {
    let body = '';
    for await (const chunk of ctx.req) body += chunk;
    const asked = JSON.parse(body);
    if (!asked.mode) {
      tamper = null;
      userinfoTamper = null;
      discoveryTamper = null;
    } else if (asked.mode.startsWith('userinfo-')) {
      userinfoTamper = asked;
    } else if (asked.mode === 'discovery') {
      discoveryTamper = asked;
    } else {
      tamper = asked;
    }
    ctx.status = 204;
    return;
  }
  if (ctx.path === '/__test__/requests') {
    ctx.body = {
      jwks: jwksRequests, discovery: discoveryRequests, userinfo: userinfoRequests,
      userinfo_token: userinfoToken,
    };
    return;
  }
  if (ctx.path === '/jwks') jwksRequests += 1;
  if (ctx.path === '/.well-known/openid-configuration') discoveryRequests += 1;
  if (ctx.path === '/me') {
    userinfoRequests += 1;
    userinfoToken = (ctx.get('authorization') || '').replace(/^Bearer /i, '');
    if (userinfoTamper && userinfoTamper.mode === 'userinfo-drop') {
      userinfoTamper = null;
      ctx.req.socket.destroy();
      return;
    }
    await next();
    if (userinfoTamper) await tamperUserinfo(ctx);
    return;
  }
  await next();
  if (ctx.path === '/.well-known/openid-configuration' && discoveryTamper) {
    const document = { ...ctx.body };
    overwrite(document, discoveryTamper.claims);
    ctx.body = document;
    discoveryTamper = null;
    return;
  }
  if (ctx.path !== '/token' || !tamper) return;
  if (tamper.mode === 'answer') {
    ctx.status = tamper.status;
    ctx.type = tamper.type;
    ctx.body = tamper.body;
    tamper = null;
  } else if (tamper.mode === 'slow') {
    const { seconds } = tamper;
    tamper = null;
    await new Promise((resolve) => { setTimeout(resolve, seconds * 1000); });
  } else if (ctx.body && ctx.body.id_token) {
    ctx.body = { ...ctx.body, id_token: await tampered(ctx.body.id_token) };
    tamper = null;
  }
});

provider.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`oidc-provider listening on ${config.issuer}\n`);
});

// A real OpenID Provider for Vigo's tests: the certified `oidc-provider` package over HTTPS on
// 127.0.0.1, one confidential client, a few accounts, a login form (or an automatic login), and
// a test-only switch that rewrites the ID token the token endpoint returns.
//
// Started by tests/common/oidc.rs (see there). Settings come from the environment:
//   OIDC_CERT, OIDC_KEY          PEM files of the server certificate and its key (required)
//   OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI   the one client (required)
//   OIDC_ACCOUNTS                JSON [{"sub","email","preferred_username","name"}] (default: alice, bob)
//   OIDC_AUTO_LOGIN              log this account (sub or username) in without a form
//   OIDC_ID_TOKEN_ALG            RS256 (default), ES256 or EdDSA
//   OIDC_MISBEHAVE               one of MISBEHAVIOURS below; unset = behave
//   OIDC_LIFETIME_SECS           exit after this long (default 300); also exits when stdin closes
// Prints one JSON line on stdout once listening: {"issuer": "https://127.0.0.1:PORT", "port": PORT}.

import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

import Provider from 'oidc-provider';

const MISBEHAVIOURS = [
  'wrong_aud', // re-signed with the provider's key, aud = someone else
  'wrong_iss', // re-signed, iss = another issuer
  'expired', // re-signed, exp and iat an hour in the past
  'bad_signature', // the provider's token with one signature byte flipped
  'alg_none', // header alg "none", no signature
  'hs256_public_key', // HS256, keyed with the signing key's public PEM, same kid
  'wrong_nonce', // re-signed, another nonce
  'unknown_kid', // signed by a key that is never published
  'rotated_key', // signed by a key the JWKS gains only after its first fetch
];

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`provider.mjs: ${name} is required`);
    process.exit(2);
  }
  return v;
}

const clientId = need('OIDC_CLIENT_ID');
const clientSecret = need('OIDC_CLIENT_SECRET');
const redirectUri = need('OIDC_REDIRECT_URI');
const tls = { cert: readFileSync(need('OIDC_CERT')), key: readFileSync(need('OIDC_KEY')) };
const alg = process.env.OIDC_ID_TOKEN_ALG || 'RS256';
const misbehave = process.env.OIDC_MISBEHAVE || '';
const autoLogin = process.env.OIDC_AUTO_LOGIN || '';
const lifetime = Number(process.env.OIDC_LIFETIME_SECS || 300);
if (misbehave && !MISBEHAVIOURS.includes(misbehave)) {
  console.error(`provider.mjs: unknown OIDC_MISBEHAVE ${misbehave}; one of ${MISBEHAVIOURS.join(', ')}`);
  process.exit(2);
}
if (!['RS256', 'ES256', 'EdDSA'].includes(alg)) {
  console.error('provider.mjs: OIDC_ID_TOKEN_ALG is RS256, ES256 or EdDSA');
  process.exit(2);
}
const accounts = JSON.parse(
  process.env.OIDC_ACCOUNTS ||
    JSON.stringify([
      { sub: 'alice', email: 'alice@example.org', preferred_username: 'alice', name: 'Alice Example' },
      { sub: 'bob', email: 'bob@example.org', preferred_username: 'bob', name: 'Bob Example' },
    ]),
);
const findByLogin = (login) => accounts.find((a) => a.sub === login || a.preferred_username === login);

// Bounded life: the test that started us may die without killing us.
setTimeout(() => process.exit(0), lifetime * 1000);
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

// --- keys: one per algorithm, private JWKs the provider signs with -------------------------

function newKey(algorithm, kid) {
  const { privateKey } =
    algorithm === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : algorithm === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: algorithm, use: 'sig' };
}

const signingKeys = ['RS256', 'ES256', 'EdDSA'].map((a) => newKey(a, `${a.toLowerCase()}-1`));
const keyFor = (kid) => signingKeys.find((k) => k.kid === kid);
const rogueKey = newKey(alg, `${alg.toLowerCase()}-unpublished`);
const rotatedKey = newKey(alg, `${alg.toLowerCase()}-2`);
const publicJwk = (jwk) => {
  const pub = createPublicKey({ key: jwk, format: 'jwk' }).export({ format: 'jwk' });
  return { ...pub, kid: jwk.kid, alg: jwk.alg, use: 'sig' };
};

// --- the misbehaviour switch -------------------------------------------------------------

const b64u = (data) => Buffer.from(data).toString('base64url');
const part = (text) => JSON.parse(Buffer.from(text, 'base64url').toString());

function jws(header, payload, jwk) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  const key = createPrivateKey({ key: jwk, format: 'jwk' });
  const data = Buffer.from(input);
  const sig =
    header.alg === 'RS256'
      ? sign('sha256', data, key)
      : header.alg === 'ES256'
        ? sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' })
        : sign(null, data, key);
  return `${input}.${b64u(sig)}`;
}

function rewrite(idToken) {
  const [h, p, s] = idToken.split('.');
  const header = part(h);
  const payload = part(p);
  const now = Math.floor(Date.now() / 1000);
  const own = keyFor(header.kid);
  switch (misbehave) {
    case 'wrong_aud':
      return jws(header, { ...payload, aud: 'someone-else' }, own);
    case 'wrong_iss':
      return jws(header, { ...payload, iss: `${payload.iss}/other` }, own);
    case 'expired':
      return jws(header, { ...payload, iat: now - 7200, exp: now - 3600 }, own);
    case 'wrong_nonce':
      return jws(header, { ...payload, nonce: 'not-the-nonce-of-this-login' }, own);
    case 'bad_signature': {
      const sig = Buffer.from(s, 'base64url');
      sig[sig.length >> 1] ^= 0x01;
      return `${h}.${p}.${b64u(sig)}`;
    }
    case 'alg_none':
      return `${b64u(JSON.stringify({ alg: 'none', typ: 'JWT', kid: header.kid }))}.${p}.`;
    case 'hs256_public_key': {
      const pem = createPublicKey({ key: own, format: 'jwk' }).export({ format: 'pem', type: 'spki' });
      const input = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: header.kid }))}.${p}`;
      return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
    }
    case 'unknown_kid':
      return jws({ ...header, kid: rogueKey.kid }, payload, rogueKey);
    case 'rotated_key':
      return jws({ ...header, kid: rotatedKey.kid }, payload, rotatedKey);
    default:
      return idToken;
  }
}

// --- the interaction: login form (or automatic login), consent always granted ---------------

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, error) {
  return `<!doctype html><html><head><title>Test OpenID Provider: sign in</title></head><body>
<h1>Sign in</h1>${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>Username <input name="login" autofocus></label>
<button type="submit">Sign in</button></form></body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 4096) break;
  }
  return new URLSearchParams(body);
}

async function interaction(provider, ctx, wantsLoginPost) {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params, session, uid } = details;
  let result;
  if (prompt.name === 'login') {
    let login = autoLogin;
    if (!login && wantsLoginPost && ctx.method === 'POST') login = (await readForm(ctx.req)).get('login') || '';
    if (!login || !findByLogin(login)) {
      ctx.type = 'html';
      ctx.body = loginPage(uid, login ? 'No such account.' : '');
      return;
    }
    result = { login: { accountId: findByLogin(login).sub } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  }
  ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false }));
}

// --- the provider, on a port the kernel picks ---------------------------------------------

const server = createServer(tls);
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `https://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: alg,
      },
    ],
    jwks: { keys: signingKeys },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username', 'name'] },
    // Put the scope's claims into the ID token itself, where the relying party reads them.
    conformIdTokenClaims: false,
    // Explicit lifetimes (seconds), so the provider does not print notices about its defaults.
    ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 600, IdToken: 600, Interaction: 600, Session: 600 },
    features: { devInteractions: { enabled: false } },
    enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256', 'EdDSA'] },
    interactions: { url: (ctx, i) => `/interaction/${i.uid}` },
    async findAccount(ctx, id) {
      const a = accounts.find((x) => x.sub === id);
      if (!a) return undefined;
      return {
        accountId: a.sub,
        async claims() {
          return { sub: a.sub, email: a.email, email_verified: true, preferred_username: a.preferred_username, name: a.name };
        },
      };
    },
  });

  let jwksServed = 0;
  provider.use(async (ctx, next) => {
    const m = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
    if (m) return interaction(provider, ctx, Boolean(m[2]));
    await next();
    if (ctx.path === '/token' && ctx.status === 200 && ctx.body?.id_token && misbehave) {
      ctx.body = { ...ctx.body, id_token: rewrite(ctx.body.id_token) };
    }
    if (ctx.path === '/jwks' && ctx.status === 200 && misbehave === 'rotated_key' && jwksServed++ > 0) {
      ctx.body = { keys: [...ctx.body.keys, publicJwk(rotatedKey)] };
    }
  });

  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
});

// A real OpenID provider for Kargo's end-to-end SSO tests: panva's certified `oidc-provider`
// on loopback TLS, with static clients and accounts, a plain login form a scripted user agent
// can post, and an admin endpoint that rotates the signing key.
//
// Usage: node provider.mjs CONFIG.json
//
// CONFIG (written by the Rust harness, crates/kargo-cli/tests/e2e/oidc.rs):
//   {
//     "cert": "/path/tls.crt", "key": "/path/tls.key",   // PEM, for 127.0.0.1
//     "idTokenTtl": 60,                                   // seconds
//     "alg": "RS256",                                     // or "ES256": the signing key's kind
//     "port": 0,                                          // 0: any free port
//     "redirectUris": ["https://.../login"],              // more redirect URIs of `kargo`
//     "webRedirectUris": ["https://.../callback"],        // a web client `kargo-web` with these
//     "users": [{ "sub": "alice", "email": "...", "password": "...", "name": "...",
//                 "groups": ["devops"],
//                 "claims": {"repository": "acme/app"} }]   // optional: more ID-token claims
//                                                             // (a CI job's, in the `profile` scope)
//   }
//
// Once both listeners are up it prints one line:
//   oidc-provider ready issuer=https://127.0.0.1:PORT admin=http://127.0.0.1:PORT
//
// Admin endpoint (plain HTTP, loopback only):
//   POST /rotate  -> {"kid": NEW, "previous": OLD}: a new signing key; the JWKS serves the new
//                    key first and keeps the previous one (tokens already issued still verify).
//   POST /rotate?drop=1  -> the same, without keeping the previous key.
//   GET  /kid     -> {"kid": CURRENT}
import { readFileSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import { createPrivateKey, generateKeyPairSync, randomUUID, randomBytes } from 'node:crypto';
import { once } from 'node:events';

import Provider from 'oidc-provider';
// The package's own in-memory adapter (no `exports` map: a deep import of the pinned version),
// made once so that every Provider instance of this process shares its storage.
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const alg = config.alg ?? 'RS256';
const users = new Map(config.users.map((u) => [u.sub, u]));
const cookieKeys = [randomBytes(32).toString('hex')];
const adapter = createMemoryAdapter();

// The pair comes out PEM-encoded and the JWK is exported from a key object made from that PEM.
// Exporting the generated key object itself can deadlock Node.js (seen on 20.20): when the
// export's allocation starts a garbage collection that finalizes the key-generation job, the
// job's destructor waits for the key's lock, which the export holds.
function newKey() {
  const encoding = {
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  };
  const { privateKey } = alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256', ...encoding })
    : generateKeyPairSync('rsa', { modulusLength: 2048, ...encoding });
  const jwk = createPrivateKey(privateKey).export({ format: 'jwk' });
  return { ...jwk, kid: randomUUID(), alg, use: 'sig' };
}

// Signing keys, current first.
let keys = [newKey()];

const tls = https.createServer({ cert: readFileSync(config.cert), key: readFileSync(config.key) });
tls.listen(config.port ?? 0, '127.0.0.1');
await once(tls, 'listening');
const issuer = `https://127.0.0.1:${tls.address().port}`;

function escape(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head><body>${body}</body></html>`;
}

// A provider with the current keys. Every instance shares `adapter` and the cookie keys, so
// sessions, grants and refresh tokens survive a key rotation.
function makeProvider() {
  const provider = new Provider(issuer, {
    // Public clients (PKCE required), as Kargo's UI and CLI are: `kargo` (the server's
    // `--oidc-client-id`), `kargo-cli` (`--oidc-cli-client-id`), and `other-app` (an audience
    // Kargo must refuse). Each accepts the CLI's callback on any loopback port (RFC 8252 7.3).
    clients: ['kargo', 'kargo-cli', 'other-app'].map((clientId) => ({
      client_id: clientId,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: [
        'http://localhost/auth/callback',
        'http://127.0.0.1/auth/callback',
        ...(clientId === 'kargo' ? config.redirectUris ?? [] : []),
      ],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      id_token_signed_response_alg: alg,
    })).concat(config.webRedirectUris?.length ? [{
      // The web UI's sign-in (`kargo server --oidc-client-id kargo-web`): a public web client
      // (PKCE, no secret) redirected to the server's own https callback, which a native
      // client may not use on 127.0.0.1.
      client_id: 'kargo-web',
      application_type: 'web',
      token_endpoint_auth_method: 'none',
      redirect_uris: config.webRedirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: alg,
    }] : []),
    jwks: { keys },
    adapter,
    cookies: { keys: cookieKeys },
    scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      // A CI issuer's claims (GitHub Actions' names), for users that carry them: the
      // federation tests play a CI job signed in as such a user.
      profile: ['name', 'repository', 'ref', 'workflow', 'job_workflow_ref'],
      groups: ['groups'],
    },
    // The scopes' claims go into the ID token (Kargo reads them there).
    conformIdTokenClaims: false,
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
    ttl: {
      IdToken: config.idTokenTtl ?? 60,
      AccessToken: config.idTokenTtl ?? 60,
      AuthorizationCode: 60,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 3600,
    },
    // A refresh token for the offline_access scope, also without prompt=consent.
    issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token')
      && code.scopes.has('offline_access'),
    rotateRefreshToken: true,
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
    },
    findAccount: async (_ctx, sub) => {
      const user = users.get(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        claims: async () => ({
          sub,
          email: user.email,
          email_verified: true,
          name: user.name,
          groups: user.groups ?? [],
          ...(user.claims ?? {}),
        }),
      };
    },
  });
  // offline_access without prompt=consent: a refresh token anyway, as Dex, Okta and Keycloak
  // give one (the spec lets a provider drop the scope; this one would).
  provider.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === '/auth') {
      const query = new URLSearchParams(ctx.querystring);
      if ((query.get('scope') ?? '').split(' ').includes('offline_access') && !query.has('prompt')) {
        query.set('prompt', 'consent');
        ctx.querystring = query.toString();
      }
    }
    await next();
  });
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error', err));
  return provider;
}

let provider = makeProvider();
let providerCallback = provider.callback();

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

function loginPage(uid, error) {
  return page('Sign in', `<h1>Sign in</h1>${error ? `<p class="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<input type="email" name="login" autofocus>
<input type="password" name="password">
<button type="submit">Sign in</button>
</form>`);
}

function consentPage(uid, details) {
  const scopes = details.params.scope ?? '';
  return page('Authorize', `<h1>Authorize ${escape(details.params.client_id)}</h1>
<p>Scopes: ${escape(scopes)}</p>
<form method="post" action="/interaction/${escape(uid)}/confirm">
<button type="submit">Continue</button>
</form>`);
}

// The interaction routes: a login form and a consent form, posted by a browser or by the
// tests' scripted user agent.
async function interaction(req, res, path) {
  const [, , uid, action] = path.split('/');
  const p = provider;
  const details = await p.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, page('Error', 'interaction mismatch'));
  const { prompt } = details;
  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') return send(res, 200, loginPage(uid));
    return send(res, 200, consentPage(uid, details));
  }
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const user = [...users.values()].find((u) => u.email === form.get('login'));
    if (!user || user.password !== form.get('password')) {
      return send(res, 200, loginPage(uid, 'Invalid email or password.'));
    }
    return p.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'confirm') {
    const { accountId } = details.session;
    const grant = details.grantId
      ? await p.Grant.find(details.grantId)
      : new p.Grant({ accountId, clientId: details.params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    if (prompt.details.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    const consent = details.grantId ? {} : { grantId };
    return p.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
  }
  return send(res, 404, page('Not found', 'not found'));
}

tls.on('request', async (req, res) => {
  const path = new URL(req.url, issuer).pathname;
  if (path.startsWith('/interaction/')) {
    try {
      await interaction(req, res, path);
    } catch (err) {
      send(res, 400, page('Error', escape(`${err.name}: ${err.message}`)));
    }
    return;
  }
  providerCallback(req, res);
});

const admin = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  res.setHeader('content-type', 'application/json');
  if (req.method === 'POST' && url.pathname === '/rotate') {
    const previous = keys[0].kid;
    const next = newKey();
    keys = url.searchParams.get('drop') ? [next] : [next, keys[0]];
    provider = makeProvider();
    providerCallback = provider.callback();
    res.end(JSON.stringify({ kid: next.kid, previous }));
    return;
  }
  if (req.method === 'GET' && url.pathname === '/kid') {
    res.end(JSON.stringify({ kid: keys[0].kid }));
    return;
  }
  res.statusCode = 404;
  res.end('{}');
});
admin.listen(0, '127.0.0.1');
await once(admin, 'listening');

console.log(`oidc-provider ready issuer=${issuer} admin=http://127.0.0.1:${admin.address().port}`);

// Reference provider for bench/run.py: panva's oidc-provider (npm), configured like the e-ID
// provider where it can be: RS256 JWT access tokens (resource indicators), client_credentials,
// refresh tokens rotated on every use, introspection, userinfo. In-memory adapter (its default).
//
//   node server.mjs --port 0 --seed-file /tmp/seed.json --refresh-tokens 256
//
// Listens on 127.0.0.1 only. Before listening it creates, for the benchmark client, the grants
// and tokens the scenarios present (refresh tokens to rotate, an opaque access token for
// userinfo and introspection) and writes them, with its port and endpoint paths, to --seed-file.
// It has no login scenario: its development login pages check no password, and a comparable
// password login (argon2id) would be code of ours, not oidc-provider's.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';
import { setStorage } from 'oidc-provider/lib/adapters/memory_adapter.js';
import QuickLRU from 'quick-lru';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, arg, i, all) => {
    if (arg.startsWith('--')) acc.push([arg.slice(2), all[i + 1]]);
    return acc;
  }, []),
);
const PORT = Number(args.port || 0);
const SEED_FILE = args['seed-file'];
const REFRESH_TOKENS = Number(args['refresh-tokens'] || 256);
const ISSUER = args.issuer || 'https://idp.bench.local';
const RESOURCE = 'urn:bench:api';
const CLIENT_ID = 'bench-rp';
const CLIENT_SECRET = randomBytes(32).toString('base64url');
const ACCOUNT = 'a0000000-0000-4000-8000-000000000001';

const VERSION = JSON.parse(
  readFileSync(new URL('./node_modules/oidc-provider/package.json', import.meta.url)),
).version;

// Its default in-memory adapter, with room for a benchmark: by default it keeps 1,000 entries
// (an LRU), and a run stores far more (each rotation stores a refresh token), which would evict
// the grants and tokens seeded below.
setStorage(new QuickLRU({ maxSize: 5_000_000 }));

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', alg: 'RS256', use: 'sig' };

const claims = {
  sub: ACCOUNT,
  name: 'Nguyễn Văn An',
  family_name: 'Nguyễn',
  middle_name: 'Văn',
  given_name: 'An',
  birthdate: '1999-05-14',
  gender: 'male',
  email: 'an.nguyen@bench.example.vn',
  email_verified: false,
  phone_number: '+84912000001',
  phone_number_verified: false,
};

const provider = new Provider(ISSUER, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['https://rp.bench.local/cb'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid profile email phone offline_access api',
  }],
  jwks: { keys: [jwk] },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'phone', 'api'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'family_name', 'middle_name', 'given_name', 'birthdate', 'gender'],
    email: ['email', 'email_verified'],
    phone: ['phone_number', 'phone_number_verified'],
  },
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ ...claims, sub }) }),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // A client introspects only its own tokens, as in the e-ID provider.
    introspection: { enabled: true, allowedPolicy: (ctx, client, token) => token.clientId === client.clientId },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api',
        audience: RESOURCE,
        accessTokenTTL: 3600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  // Every refresh rotates, as in the e-ID provider (the default rotates only some).
  rotateRefreshToken: true,
  ttl: { AccessToken: 3600, ClientCredentials: 600, RefreshToken: 86400, Grant: 86400 },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
});
// Behind a TLS-terminating proxy, as the e-ID provider is benchmarked (X-Forwarded-Proto).
provider.proxy = true;

async function seed() {
  const client = await provider.Client.find(CLIENT_ID);
  const refreshTokens = [];
  for (let i = 0; i < REFRESH_TOKENS; i += 1) {
    const grant = new provider.Grant({ accountId: ACCOUNT, clientId: CLIENT_ID });
    grant.addOIDCScope('openid profile email phone');
    grant.addResourceScope(RESOURCE, 'api');
    const grantId = await grant.save();
    // Scope api only (no openid): a refresh answers a JWT access token and a new refresh token,
    // no ID token, like the e-ID provider's refresh grant.
    const rt = new provider.RefreshToken({
      accountId: ACCOUNT, client, grantId, scope: 'api', resource: RESOURCE,
      gty: 'authorization_code', authTime: Math.floor(Date.now() / 1000),
    });
    refreshTokens.push(await rt.save());
  }
  const grant = new provider.Grant({ accountId: ACCOUNT, clientId: CLIENT_ID });
  grant.addOIDCScope('openid profile email phone');
  const grantId = await grant.save();
  // Userinfo accepts only opaque access tokens without a resource (oidc-provider's rule), and
  // introspection answers only for opaque tokens: one such token serves both scenarios.
  const at = new provider.AccessToken({
    accountId: ACCOUNT, client, grantId, scope: 'openid profile email phone', gty: 'authorization_code',
  });
  const accessToken = await at.save();
  return { refreshTokens, accessToken };
}

const { refreshTokens, accessToken } = await seed();
const server = http.createServer(provider.callback());
server.keepAliveTimeout = 65000;
server.listen(PORT, '127.0.0.1', () => {
  const { port } = server.address();
  const out = {
    port,
    issuer: ISSUER,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    paths: {
      token: '/token',
      introspection: '/token/introspection',
      userinfo: '/me',
      jwks: '/jwks',
      discovery: '/.well-known/openid-configuration',
    },
    refresh_tokens: refreshTokens,
    access_token: accessToken,
    introspect_token: accessToken,
    cc_scope: 'api',
    version: VERSION,
  };
  if (SEED_FILE) writeFileSync(SEED_FILE, JSON.stringify(out));
  process.stdout.write(`READY ${port}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}

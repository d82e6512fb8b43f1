// Verifies JWTs with npm's jose from a JWKS URL alone, as a resource server would.
//
//   node tests/keys/verify.mjs JWKS_URL TOKEN... [--issuer ISS] [--audience AUD]
//
// Prints one JSON line per token: {"ok":true,"header":{...},"payload":{...}} or
// {"ok":false,"code":"ERR_..."} (jose's error code), and exits 0 once all are checked.
import { createRemoteJWKSet, jwtVerify } from "jose";

const args = process.argv.slice(2);
const options = { algorithms: ["RS256", "ES256", "EdDSA"] };
const tokens = [];
let url;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--issuer") options.issuer = args[++i];
  else if (args[i] === "--audience") options.audience = args[++i];
  else if (url === undefined) url = args[i];
  else tokens.push(args[i]);
}
const jwks = createRemoteJWKSet(new URL(url), { cooldownDuration: 0 });
for (const token of tokens) {
  try {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, options);
    console.log(JSON.stringify({ ok: true, header: protectedHeader, payload }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, code: e.code ?? String(e) }));
  }
}

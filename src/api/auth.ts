// Who is calling the API. `Authorization: Bearer <token>` only (a token in a query string ends
// up in proxy logs): an API token from `api.tokens`; an agent's own token (static or minted),
// which may act for that agent only; or a supervisor's token (http.supervisors), which reads the
// wallboard's figures and may call a missed caller back from any agent. Each endpoint names the
// kinds it takes (Endpoint.principals); any other valid token gets 403.
import { createHash, timingSafeEqual } from 'node:crypto';
import { bearerToken, type TokenVerifier } from '../http/tokens.js';
import { ApiError } from './errors.js';

export type ApiPrincipal = { kind: 'api'; name: string } | { kind: 'agent'; agentId: string } | { kind: 'supervisor'; name: string };
export type PrincipalKind = ApiPrincipal['kind'];

const WHAT: Record<PrincipalKind, string> = { api: 'an API token', agent: "an agent's token", supervisor: "a supervisor's token" };

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** The principal's name for logs and its rate-limit bucket. */
export function principalKey(who: ApiPrincipal): string {
  return who.kind === 'agent' ? `agent:${who.agentId}` : `${who.kind}:${who.name}`;
}

export class ApiAuth {
  private readonly tokens: Array<[Buffer, string]>;

  constructor(
    apiTokens: ReadonlyArray<{ name: string; token: string }>,
    private readonly others: TokenVerifier | null,
  ) {
    this.tokens = apiTokens.map((t) => [digest(t.token), t.name]);
  }

  /** The caller, or an ApiError: 401 without a valid token, 403 for a kind of token the endpoint does not take. */
  authenticate(header: string | undefined, takes: readonly PrincipalKind[] = ['api', 'agent']): ApiPrincipal {
    const who = this.identify(header);
    if (!takes.includes(who.kind)) {
      throw new ApiError(403, `${WHAT[who.kind]} cannot use this endpoint: it takes ${takes.map((k) => WHAT[k]).join(' or ')}`);
    }
    return who;
  }

  private identify(header: string | undefined): ApiPrincipal {
    const token = bearerToken(header);
    if (token === null) {
      throw new ApiError(401, header === undefined ? 'a token is required: Authorization: Bearer <token>' : 'malformed Authorization header: expected Bearer <token>', undefined, { 'www-authenticate': 'Bearer' });
    }
    const d = digest(token);
    let name: string | null = null;
    // Every entry is compared, so the time taken says nothing about which one matched.
    for (const [known, n] of this.tokens) if (timingSafeEqual(known, d)) name = n;
    if (name !== null) return { kind: 'api', name };
    const who = this.others?.verify(token) ?? null;
    if (who?.kind === 'agent') return { kind: 'agent', agentId: who.agentId };
    if (who?.kind === 'supervisor') return { kind: 'supervisor', name: who.name };
    throw new ApiError(401, 'invalid or expired token', undefined, { 'www-authenticate': 'Bearer error="invalid_token"' });
  }
}

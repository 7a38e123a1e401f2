// Operations endpoints on the http.listen server: GET /healthz (the process answers), GET /readyz
// (AMI logged in, outbox writable: 200 or 503 with what is not ready), GET /metrics (Prometheus,
// Bearer token: http.metricsToken or a supervisor token). Health checks need no token and say
// nothing beyond ok / not ready and why.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { sendProblem } from '../http/problem.js';
import { bearerToken } from '../http/tokens.js';
import type { Handler } from '../http/server.js';
import type { BridgeMetrics } from './metrics.js';

export interface Readiness {
  ready: boolean;
  /** One entry per check: 'ok' or what is wrong. */
  checks: Record<string, string>;
}

export interface OpsContext {
  readiness(): Readiness;
  metrics: BridgeMetrics;
  /** True if this bearer token may read /metrics. */
  mayScrape(token: string): boolean;
  /** True if the token is known at all (403 then, else 401: a guess the HTTP server throttles). */
  knows?(token: string): boolean;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** A constant-time check of a token against a configured one (absent: never). */
export function tokenMatcher(expected: string | undefined): (token: string) => boolean {
  if (!expected) return () => false;
  const want = digest(expected);
  return (token) => timingSafeEqual(digest(token), want);
}

function send(res: ServerResponse, status: number, body: string, type: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

export function opsRoutes(ctx: OpsContext): Array<[string, RegExp, Handler]> {
  const json = (res: ServerResponse, status: number, body: unknown) => send(res, status, JSON.stringify(body), 'application/json; charset=utf-8');
  return [
    ['GET', /^\/healthz$/, (_req, res) => json(res, 200, { status: 'ok' })],
    [
      'GET',
      /^\/readyz$/,
      (_req, res) => {
        const r = ctx.readiness();
        json(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', checks: r.checks });
      },
    ],
    [
      'GET',
      /^\/metrics$/,
      async (req, res) => {
        const token = bearerToken(req.headers.authorization);
        if (!token) return sendProblem(res, 401, 'a token is required: Authorization: Bearer <http.metricsToken or a supervisor token>', { headers: { 'www-authenticate': 'Bearer' } });
        if (!ctx.mayScrape(token)) {
          if (ctx.knows && !ctx.knows(token)) return sendProblem(res, 401, 'invalid token', { headers: { 'www-authenticate': 'Bearer error="invalid_token"' } });
          return sendProblem(res, 403, 'this token may not read metrics: use http.metricsToken or a supervisor token');
        }
        const { body, contentType } = await ctx.metrics.render();
        send(res, 200, body, contentType);
      },
    ],
  ];
}

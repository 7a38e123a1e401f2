// An API error as an exception a handler throws and the router answers as an RFC 9457 problem
// (src/http/problem.ts: the one writer of every error the HTTP server answers).
import type { ServerResponse } from 'node:http';
import { sendProblem } from '../http/problem.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** One line per problem, `field: what is wrong`, when there is more to say than the message. */
    readonly problems?: string[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  send(res: ServerResponse): void {
    sendProblem(res, this.status, this.message, { headers: this.headers, ...(this.problems ? { problems: this.problems } : {}) });
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(JSON.stringify(body));
}

// The API's error shape, `{ error, problems? }`, as an exception a handler throws and the router
// turns into the response: one place decides how every 4xx/5xx looks.
import type { ServerResponse } from 'node:http';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** One line per problem, `field: what is wrong`, when there is more to say than `error`. */
    readonly problems?: string[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get body(): { error: string; problems?: string[] } {
    return this.problems?.length ? { error: this.message, problems: this.problems } : { error: this.message };
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

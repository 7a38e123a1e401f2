// Every error the HTTP server answers (its own, the API's, /metrics') is an RFC 9457 problem,
// written by this one function: `application/problem+json` with type, title, status and detail.
// `type` is about:blank, so `title` is the status's reason phrase (RFC 9457 §4.2.1) and `detail`
// says what went wrong this time. Two extension members stay for the clients written against the
// earlier `{ error, problems? }` shape (the agent page and the widget read `error`): `error`
// repeats `detail`, and `problems` lists every problem found, one line each.
import { STATUS_CODES, type ServerResponse } from 'node:http';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  error: string;
  problems?: string[];
}

export function problemBody(status: number, detail: string, problems?: readonly string[]): Problem {
  return {
    type: 'about:blank',
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    error: detail,
    ...(problems?.length ? { problems: [...problems] } : {}),
  };
}

export interface ProblemOptions {
  headers?: Record<string, string>;
  /** One line per problem, `field: what is wrong`, when there is more to say than `detail`. */
  problems?: readonly string[];
}

export function sendProblem(res: ServerResponse, status: number, detail: string, opts: ProblemOptions = {}): void {
  res.writeHead(status, {
    'content-type': PROBLEM_CONTENT_TYPE,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...opts.headers,
  });
  res.end(JSON.stringify(problemBody(status, detail, opts.problems)));
}

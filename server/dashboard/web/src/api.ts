// The API client: same-origin fetches with the session cookie; every
// state-changing request carries the CSRF token held here, in memory only.

export type Session = {
  keyId: string;
  name: string;
  workspaceId: string;
  scopes: string[];
  csrfToken: string;
};

export type Problem = {
  status: number;
  detail: string;
  message?: string;
  errors?: Diagnostic[];
  failures?: { test: string; turn: number; expect: string; want: unknown; got: unknown }[];
  [k: string]: unknown;
};

export type Diagnostic = { file?: string; pointer?: string; line?: number; code: string; message: string };

let csrfToken = '';

export function setCSRF(token: string) {
  csrfToken = token;
}

export class ApiError extends Error {
  constructor(public status: number, public problem: Problem) {
    super(plainWords(problem));
  }
  get code() {
    return this.problem.detail;
  }
}

type Opts = { raw?: boolean; text?: boolean; headers?: Record<string, string> };

export async function api<T = any>(method: string, path: string, body?: unknown, opts: Opts = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
  let payload: BodyInit | undefined;
  if (body !== undefined) {
    if (opts.raw) {
      payload = body as string;
      headers['Content-Type'] = 'application/octet-stream';
    } else {
      payload = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    }
  }
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken;
  const res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store' });
  if (!res.ok) {
    let problem: Problem;
    try {
      problem = await res.json();
    } catch {
      problem = { status: res.status, detail: res.status === 404 ? 'not_found' : 'internal' };
    }
    if (res.status === 401 && path !== '/session') onUnauthorized();
    throw new ApiError(res.status, problem);
  }
  if (res.status === 204) return undefined as T;
  if (opts.text) return (await res.text()) as T;
  return res.json();
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(f: () => void) {
  onUnauthorized = f;
}

// missing reports whether an error means "this daemon has no such route"
// (a feature not built yet), as opposed to a missing resource.
export function missing(e: unknown): boolean {
  return e instanceof ApiError && ((e.status === 404 && e.code === 'not_found') || e.status === 405);
}

const words: Record<string, string> = {
  invalid_request: 'The request was not understood.',
  unauthorized: 'The API key is unknown, revoked or malformed, or your session ended. Sign in again.',
  insufficient_scope: 'Your API key is not allowed to do this.',
  csrf_failed: 'The request was refused because it did not come from this dashboard. Reload the page.',
  agent_not_found: 'This agent does not exist (or belongs to another workspace).',
  version_not_found: 'There is no such version.',
  file_not_found: 'There is no such file in the draft.',
  no_published_version: 'This agent has never been published, so there is no published version to talk to.',
  draft_revision_mismatch:
    'The draft changed after you opened this review. Nothing was published: reload the review, check the new changes, then publish again.',
  published_version_mismatch:
    'Someone else moved the published version in the meantime. Nothing changed: reload and try again.',
  publish_conflict: 'Another publish of this agent won the race. Reload the review and publish again if needed.',
  draft_unchanged: 'The draft is identical to the latest version: there is nothing new to publish.',
  precondition_failed: 'The file changed since you opened it. Reload it before saving.',
  payload_too_large: 'This is too large (a file may be at most 256 KiB).',
  validation_failed: 'Some fields are invalid.',
  invalid_path: 'This file name is not allowed. Use a kind folder and a lowercase slug, like knowledge/returns.md.',
  compile_failed: 'The draft does not compile. Fix the errors below, then try again.',
  tests_failed: 'Some tests failed, so nothing was published.',
  idempotency_key_in_use: 'The same request is still running.',
  internal: 'Something went wrong on the server. Try again.',
  unavailable: 'The server is starting or stopping. Try again shortly.',
};

export function plainWords(p: Problem): string {
  const base = words[p.detail] ?? p.message ?? `The request failed (${p.detail || p.status}).`;
  if (p.detail === 'draft_unchanged' && p.latestVersion) return `${base} (latest: ${p.latestVersion})`;
  if (p.detail === 'draft_revision_mismatch' && typeof p.currentRevision === 'string')
    return `${base} (the draft is now at ${p.currentRevision.slice(0, 8)})`;
  return base;
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  return 'The server could not be reached. Check that flowyted is running.';
}

export const enc = encodeURIComponent;
// pathEnc encodes each segment of a file path.
export const pathEnc = (p: string) => p.split('/').map(enc).join('/');

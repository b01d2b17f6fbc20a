// The gateway's public API as the page uses it: the envelope, the token, tickets.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface Exam {
  exam_id: string;
  title: string;
  duration_seconds: number;
}

export interface SessionSummary {
  session_id: string;
  exam_id: string;
  lifecycle_state: string;
}

export interface Status {
  session_id: string;
  lifecycle_state: string;
  display_state: string; // creating, initializing, ready, running, terminated, error
  message: string;
  progress?: { current_step: number; total_steps: number; step_description: string };
  environment_ready: boolean;
  remaining_seconds: number;
  delayed?: boolean; // still being prepared well past the usual time
  error_reason?: string;
  recoverable?: boolean;
}

const TOKEN_KEY = 'examiso.token';
const USER_KEY = 'examiso.user';
const RECEIVED_KEY = 'examiso.token_received'; // this browser's clock when the token arrived

export const auth = {
  get token(): string | null {
    return localStorage.getItem(TOKEN_KEY);
  },
  get user(): string | null {
    return localStorage.getItem(USER_KEY);
  },
  save(token: string, label: string) {
    localStorage.setItem(TOKEN_KEY, token);
    localStorage.setItem(USER_KEY, label);
    localStorage.setItem(RECEIVED_KEY, String(Date.now()));
    keepFresh();
  },
  clear() {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(USER_KEY);
    localStorage.removeItem(RECEIVED_KEY);
    clearTimeout(refreshTimer);
  },
};

// The token's lifetime in seconds, from its own claims (iat, exp); 0 when unreadable.
function lifetime(token: string): number {
  try {
    const claims = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    if (typeof claims.exp !== 'number') return 0;
    const issued = typeof claims.iat === 'number' ? claims.iat : Date.now() / 1000;
    return Math.max(0, claims.exp - issued);
  } catch {
    return 0;
  }
}

// A token is swapped for a fresh one when three quarters of its lifetime have
// passed, measured from its arrival on this browser's own clock (so a clock
// that is wrong does not matter), so that a candidate is never sent back to
// sign-in during an exam. Every tab does it; the newest token is shared.
let refreshTimer = 0;
export function keepFresh() {
  clearTimeout(refreshTimer);
  const token = auth.token;
  if (!token) return;
  const seconds = lifetime(token);
  if (seconds <= 0) return;
  const received = Number(localStorage.getItem(RECEIVED_KEY) ?? Date.now());
  const due = received + seconds * 750 - Date.now();
  refreshTimer = window.setTimeout(refresh, Math.max(1000, due));
}

async function refresh() {
  const token = auth.token;
  if (!token) return;
  // Another tab may have refreshed it meanwhile: then this is not due yet.
  const received = Number(localStorage.getItem(RECEIVED_KEY) ?? 0);
  if (Date.now() < received + lifetime(token) * 750 - 1000) return keepFresh();
  try {
    const r = await call<{ token: string }>('POST', '/v1/auth/refresh');
    if (auth.token === token) auth.save(r.token, auth.user ?? 'candidate');
    else keepFresh();
  } catch (e) {
    // A token that is no longer valid cannot be refreshed: the next request
    // says so. Anything else (the gateway unreachable) is tried again soon.
    if (!(e instanceof ApiError && e.code === 'UNAUTHENTICATED')) {
      refreshTimer = window.setTimeout(refresh, 5000);
    }
  }
}
window.addEventListener('storage', (ev) => {
  if (ev.key === TOKEN_KEY) keepFresh();
});

// One request; the envelope's data, or an ApiError (status 0: the gateway is unreachable).
export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'BACKEND_UNAVAILABLE', 'The exam service cannot be reached.');
  }
  let envelope: { success?: boolean; data?: T; error?: { code: string; message: string; details?: Record<string, unknown> } };
  try {
    envelope = await res.json();
  } catch {
    throw new ApiError(res.status, 'BACKEND_UNAVAILABLE', 'The exam service gave an unreadable answer.');
  }
  if (!res.ok || !envelope.success) {
    const e = envelope.error ?? { code: 'INTERNAL_ERROR', message: 'Something went wrong.' };
    throw new ApiError(res.status, e.code, e.message, e.details ?? {});
  }
  return envelope.data as T;
}

// A WebSocket URL for this page's origin, with a fresh single-use ticket
// (browsers cannot send the Authorization header on an upgrade).
export async function socketUrl(sessionId: string, kind: 'terminal' | 'status'): Promise<string> {
  const { ticket } = await call<{ ticket: string }>('POST', `/v1/sessions/${sessionId}/terminal-ticket`);
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/v1/sessions/${sessionId}/${kind}?ticket=${encodeURIComponent(ticket)}`;
}

export const ACTIVE_STATES = new Set(['created', 'initializing', 'ready', 'running']);

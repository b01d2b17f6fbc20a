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
  error_reason?: string;
  recoverable?: boolean;
}

const TOKEN_KEY = 'examiso.token';
const USER_KEY = 'examiso.user';

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
  },
  clear() {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(USER_KEY);
  },
};

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

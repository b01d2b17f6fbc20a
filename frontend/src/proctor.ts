// The staff's page (/proctor): the room (every session of the platform, live),
// one session's history and its terminal (read-only), and the actions: a
// message, more time, ending the attempt. Its own sign-in, kept apart from a
// candidate's in the same browser. Server text goes in as text, never as HTML.
import '@xterm/xterm/css/xterm.css';
import './style.css';
import { Terminal } from '@xterm/xterm';
import { $, el } from './dom';

const TOKEN_KEY = 'examiso.staff.token';
const NAME_KEY = 'examiso.staff.name';
const view = $<HTMLElement>('view');
const alertBox = $<HTMLDivElement>('alert');

interface StaffSession {
  session_id: string;
  user_id: string;
  lifecycle_state: string;
  remaining_seconds: number;
  connected: boolean;
  last_seen_at: string | null;
}
interface HistoryEntry {
  kind: string;
  to_state: string;
  reason: string;
  actor: string;
  at: string;
  seconds: number;
}

class StaffError extends Error {}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${localStorage.getItem(TOKEN_KEY) ?? ''}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const envelope = await res.json().catch(() => ({}));
  if (!res.ok || !envelope.success) {
    if (res.status === 401) signOut();
    throw new StaffError(envelope.error?.message ?? `The platform answered ${res.status}`);
  }
  return envelope.data as T;
}

function say(text: string) {
  alertBox.textContent = text;
  alertBox.hidden = !text;
}

function signOut() {
  localStorage.removeItem(TOKEN_KEY);
  signIn();
}

function signIn() {
  const name = el('input', { id: 'staff-name', required: true, maxLength: 64 });
  const role = el('select', { id: 'staff-role' }, el('option', { value: 'proctor' }, 'Proctor'),
    el('option', { value: 'admin' }, 'Administrator'));
  const form = el('form', {},
    el('label', { htmlFor: 'staff-name' }, 'Your name'), name,
    el('label', { htmlFor: 'staff-role' }, 'Role'), role,
    el('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const res = await fetch('/v1/dev/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: name.value, role: role.value }),
    });
    const envelope = await res.json().catch(() => ({}));
    if (!envelope.success) return say(envelope.error?.message ?? 'Sign-in failed.');
    localStorage.setItem(TOKEN_KEY, envelope.data.token);
    localStorage.setItem(NAME_KEY, `${name.value} (${role.value})`);
    say('');
    room();
  });
  view.className = 'staff';
  view.replaceChildren(el('h1', {}, 'Staff sign-in'), form);
  $<HTMLSpanElement>('who').textContent = '';
}

const clockText = (s: number) =>
  `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;

// The room, refreshed every 2 s; one session open below it at a time.
let refresh = 0;
let open: { sessionId: string; close: () => void } | null = null;

function room() {
  $<HTMLSpanElement>('who').textContent = `Signed in as ${localStorage.getItem(NAME_KEY) ?? 'staff'}`;
  const body = el('tbody');
  const table = el('table', { className: 'room' },
    el('thead', {}, el('tr', {}, ...['Candidate', 'State', 'Time left', 'Connected', 'Last seen', ''].map((h) => el('th', {}, h)))),
    body);
  const drawer = el('section', { id: 'drawer', className: 'drawer' });
  drawer.setAttribute('aria-label', 'Session');
  view.className = 'staff';
  view.replaceChildren(el('h1', {}, 'The room'), table, drawer);
  const load = async () => {
    try {
      const { sessions } = await call<{ sessions: StaffSession[] }>('GET', '/v1/admin/sessions');
      body.replaceChildren(...sessions.map((s) => {
        const openButton = el('button', { type: 'button' }, 'Open');
        openButton.setAttribute('aria-label', `Open session of ${s.user_id}`);
        openButton.addEventListener('click', () => openSession(drawer, s.session_id));
        return el('tr', { dataset: { sessionId: s.session_id } },
          el('td', {}, s.user_id.slice(0, 8)),
          el('td', {}, s.lifecycle_state),
          el('td', {}, clockText(s.remaining_seconds)),
          el('td', {}, s.connected ? 'yes' : 'no'),
          el('td', {}, s.last_seen_at ? new Date(s.last_seen_at).toLocaleTimeString() : '-'),
          el('td', {}, openButton));
      }));
    } catch (e) {
      say(e instanceof Error ? e.message : 'The room could not be read.');
    }
  };
  clearInterval(refresh);
  refresh = window.setInterval(load, 2000);
  load();
}

async function openSession(drawer: HTMLElement, sessionId: string) {
  open?.close();
  const screen = el('div', { className: 'observer' });
  const term = new Terminal({ disableStdin: true, cursorBlink: false, rows: 20, cols: 100, convertEol: false });
  const history = el('ol', { className: 'history' });
  const status = el('p', { className: 'status' });
  status.setAttribute('role', 'status');
  const action = (label: string, fields: HTMLElement[], run: () => Promise<string>) => {
    const form = el('form', { className: 'action' }, ...fields, el('button', { type: 'submit' }, label));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        status.textContent = await run();
        await loadHistory();
      } catch (e) {
        status.textContent = e instanceof Error ? e.message : 'That did not work.';
      }
    });
    return form;
  };
  const text = el('input', { maxLength: 2000, placeholder: 'Message for the candidate' });
  text.setAttribute('aria-label', 'Message for the candidate');
  const minutes = el('input', { type: 'number', min: '1', max: '60', value: '10' });
  minutes.setAttribute('aria-label', 'Minutes');
  const extendWhy = el('input', { maxLength: 1000, placeholder: 'Why' });
  extendWhy.setAttribute('aria-label', 'Why more time');
  const endWhy = el('input', { maxLength: 1000, placeholder: 'Why' });
  endWhy.setAttribute('aria-label', 'Why end the attempt');
  const path = `/v1/admin/sessions/${sessionId}`;
  drawer.replaceChildren(
    el('h2', {}, `Session ${sessionId}`),
    screen,
    status,
    action('Send message', [text], async () => {
      const r = await call<{ delivered: boolean }>('POST', `${path}/message`, { text: text.value });
      return r.delivered ? 'Message delivered.' : 'Message kept for when the candidate reconnects.';
    }),
    action('Give more time', [minutes, extendWhy], async () => {
      await call('POST', `${path}/extend`, { seconds: Number(minutes.value) * 60, reason: extendWhy.value });
      return `${minutes.value} more minutes given.`;
    }),
    action('End attempt', [endWhy], async () => {
      if (!window.confirm('End this attempt? The candidate cannot go back to it.')) return 'Not ended.';
      await call('POST', `${path}/terminate`, { reason: endWhy.value });
      return 'The attempt was ended.';
    }),
    el('h3', {}, 'History'),
    history,
  );
  term.open(screen);
  const loadHistory = async () => {
    const detail = await call<{ transitions: HistoryEntry[] }>('GET', path);
    history.replaceChildren(...detail.transitions.map((t) =>
      el('li', {}, `${new Date(t.at).toLocaleTimeString()} ${t.kind === 'transition' ? `→ ${t.to_state}` : t.kind}` +
        `${t.seconds ? ` ${t.seconds} s` : ''}${t.reason ? `: ${t.reason}` : ''} (${t.actor})`)));
  };
  let socket: WebSocket | null = null;
  open = {
    sessionId,
    close: () => {
      socket?.close(1000);
      term.dispose();
    },
  };
  try {
    await loadHistory();
    const { ticket } = await call<{ ticket: string }>('POST', `${path}/terminal-ticket`);
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    socket = new WebSocket(`${scheme}//${location.host}${path}/terminal?ticket=${encodeURIComponent(ticket)}`);
    socket.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === 'output') term.write(m.data);
      if (m.type === 'termination') status.textContent = m.message;
    };
    socket.onclose = (ev) => {
      if (ev.code !== 1000) status.textContent = `The live view closed (${ev.code} ${ev.reason}).`;
    };
  } catch (e) {
    status.textContent = e instanceof Error ? e.message : 'The session could not be opened.';
  }
}

if (localStorage.getItem(TOKEN_KEY)) {
  room();
} else {
  signIn();
}

// The candidate's page: sign in, pick an exam, watch it get ready, work in the
// terminal until time is up or the exam is submitted. Every piece of server
// text goes into the page as text, never as HTML.
import '@xterm/xterm/css/xterm.css';
import './style.css';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { ACTIVE_STATES, ApiError, Exam, SessionSummary, Status, auth, call, keepFresh, socketUrl } from './api';
import { Countdown } from './countdown';
import { $, el } from './dom';

const view = $<HTMLElement>('view');
const notice = $<HTMLDivElement>('notice');
const alertBox = $<HTMLDivElement>('alert');
const clock = $<HTMLSpanElement>('clock');
const watching = $<HTMLSpanElement>('watching');
const proctorMessage = $<HTMLDivElement>('proctor-message');
const submitButton = $<HTMLButtonElement>('submit');
const signOutButton = $<HTMLButtonElement>('signout');
const confirmDialog = $<HTMLDialogElement>('confirm');

// Whatever the current view runs (sockets, timers, listeners) stops when the view changes.
let teardown: Array<() => void> = [];
const countdown = new Countdown(clock, (message) => showAlert(message));


function show(name: string, ...children: Node[]) {
  for (const stop of teardown) stop();
  teardown = [];
  countdown.stop();
  submitButton.hidden = true;
  hideNotice();
  alertBox.hidden = true;
  watching.hidden = true;
  proctorMessage.hidden = true;
  view.className = `view-${name}`;
  view.dataset.view = name;
  view.replaceChildren(...children);
  $<HTMLSpanElement>('who').textContent = auth.user ? `Signed in as ${auth.user}` : '';
  signOutButton.hidden = !auth.token;
  const heading = view.querySelector('h1');
  (heading ?? view).setAttribute('tabindex', '-1');
  (heading ?? view).focus();
}

function showNotice(text: string) {
  notice.textContent = text;
  notice.hidden = false;
}
function hideNotice() {
  notice.hidden = true;
}
function showAlert(text: string) {
  alertBox.textContent = text;
  alertBox.hidden = false;
}

function explain(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  return 'Something went wrong. Please try again.';
}

// Reconnection delays: quick at first, then every 5 s at most.
function backoff(attempt: number): number {
  return Math.min(5000, 250 * 2 ** attempt);
}

// --- sign-in ---------------------------------------------------------------

function signIn(message = '') {
  const name = el('input', { id: 'name', name: 'name', autocomplete: 'username', required: true, maxLength: 64 });
  const error = el('p', { className: 'error', role: 'alert', textContent: message });
  const form = el(
    'form',
    { className: 'card' },
    el('h1', { textContent: 'Sign in' }),
    el('p', {
      textContent:
        'Development sign-in: choose a name. The same name always finds the same candidate and their exam.',
    }),
    el('label', { htmlFor: 'name', textContent: 'Your name' }),
    name,
    el('button', { type: 'submit', textContent: 'Sign in' }),
    error,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    try {
      const r = await call<{ token: string; user_id: string }>('POST', '/v1/dev/token', { name: name.value.trim() });
      auth.save(r.token, name.value.trim());
      await home();
    } catch (e) {
      error.textContent =
        e instanceof ApiError && e.code === 'TOKEN_ISSUING_DISABLED'
          ? 'This platform signs candidates in through its identity provider; open the link your exam provider gave you.'
          : explain(e);
    }
  });
  show('signin', form);
  name.focus();
}

// --- the catalog and the way back into an active session ---------------------

async function home() {
  if (!auth.token) return signIn();
  try {
    const { sessions } = await call<{ sessions: SessionSummary[] }>('GET', '/v1/sessions');
    const active = sessions.find((s) => ACTIVE_STATES.has(s.lifecycle_state));
    if (active) return resume(active.session_id, active.lifecycle_state);
    const { exams } = await call<{ exams: Exam[] }>('GET', '/v1/exams');
    catalog(exams);
  } catch (e) {
    if (e instanceof ApiError && e.code === 'UNAUTHENTICATED') {
      auth.clear();
      return signIn('Your sign-in has expired. Please sign in again.');
    }
    unavailable(e, home);
  }
}

function unavailable(e: unknown, retry: () => void) {
  const again = el('button', { type: 'button', textContent: 'Try again' });
  again.addEventListener('click', () => retry());
  show('unavailable', el('section', { className: 'card' }, el('h1', { textContent: 'Cannot reach the exam service' }),
    el('p', { textContent: explain(e) }), again));
}

function resume(sessionId: string, state: string) {
  if (state === 'ready' || state === 'running') return terminalView(sessionId);
  progress(sessionId);
}

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.round(seconds / 60);
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}

function catalog(exams: Exam[]) {
  const list = el('ul', { className: 'exams' });
  const error = el('p', { className: 'error', role: 'alert' });
  for (const exam of exams) {
    const start = el('button', { type: 'button', textContent: 'Start exam' });
    start.setAttribute('aria-label', `Start exam: ${exam.title}`);
    start.addEventListener('click', async () => {
      start.disabled = true;
      try {
        const s = await call<{ session_id: string }>('POST', '/v1/sessions', { exam_id: exam.exam_id });
        progress(s.session_id);
      } catch (e) {
        const existing = e instanceof ApiError ? (e.details.session_id as string | undefined) : undefined;
        if (existing) return home();
        error.textContent = explain(e);
        start.disabled = false;
      }
    });
    list.append(
      el('li', {},
        el('h2', { textContent: exam.title }),
        el('p', { textContent: duration(exam.duration_seconds) }),
        start),
    );
  }
  show('catalog', el('section', {}, el('h1', { textContent: 'Your exams' }), error, list));
}

// --- progress while the environment is made ----------------------------------

const STEPS = ['Creating your environment', 'Preparing the exam', 'Ready'];

function progress(sessionId: string) {
  const steps = el('ol', { className: 'steps' });
  const items = STEPS.map((label) => el('li', { textContent: label }));
  steps.append(...items);
  const message = el('p', { className: 'message', textContent: 'Starting…' });
  message.setAttribute('aria-live', 'polite');
  const section = el('section', { className: 'card' }, el('h1', { textContent: 'Getting your exam ready' }), steps, message);
  show('progress', section);

  let attempt = 0;
  let socket: WebSocket | null = null;
  let timer = 0;
  let done = false;
  teardown.push(() => {
    done = true;
    clearTimeout(timer);
    socket?.close(1000);
  });

  const update = (s: Status) => {
    const step = s.display_state === 'creating' ? 0 : s.display_state === 'initializing' ? 1 : 2;
    items.forEach((li, i) => {
      li.className = i < step ? 'done' : i === step ? 'current' : '';
      if (i === step) li.setAttribute('aria-current', 'step');
      else li.removeAttribute('aria-current');
    });
    message.textContent = s.delayed ? s.message : s.progress?.step_description || s.message;
    message.classList.toggle('delayed', !!s.delayed);
    if (s.display_state === 'ready' || s.display_state === 'running') {
      done = true;
      terminalView(sessionId);
    } else if (s.display_state === 'error') {
      done = true;
      failed(s);
    } else if (s.display_state === 'terminated') {
      done = true;
      ended(s.message || 'This exam has ended.');
    }
  };

  const connect = async () => {
    if (done) return;
    try {
      socket = new WebSocket(await socketUrl(sessionId, 'status'));
    } catch (e) {
      return retry(e);
    }
    socket.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === 'status_update') {
        attempt = 0;
        hideNotice();
        update(m.data as Status);
      } else if (m.type === 'error') {
        showNotice(m.data?.message ?? 'The exam service reported a problem.');
      }
    };
    socket.onclose = () => retry(null);
  };
  const retry = (e: unknown) => {
    if (done) return;
    if (e instanceof ApiError && (e.code === 'ACCESS_DENIED' || e.code === 'UNAUTHENTICATED')) return home();
    showNotice('Connection to the exam service lost. Reconnecting…');
    timer = window.setTimeout(connect, backoff(attempt++));
  };
  connect();
}

function failed(s: Status) {
  const again = el('button', { type: 'button', textContent: 'Start again' });
  again.addEventListener('click', () => home());
  const what = s.recoverable
    ? 'This can happen when the platform is busy. Start the exam again; nothing of your work is lost, as none was started.'
    : 'Please contact your exam proctor with the time shown on your screen.';
  show('failed', el('section', { className: 'card' },
    el('h1', { textContent: 'Your exam environment could not be prepared' }),
    el('p', { className: 'error', textContent: s.message }),
    el('p', { textContent: what }),
    el('p', { className: 'reference', textContent: s.error_reason ? `Reference for your proctor: ${s.error_reason}` : '' }),
    again));
}

// --- the terminal --------------------------------------------------------------

function terminalView(sessionId: string) {
  const host = el('div', { className: 'terminal', id: 'terminal' });
  host.setAttribute('aria-label', 'Exam terminal');
  show('terminal', el('h1', { className: 'visually-hidden', textContent: 'Exam terminal' }), host);
  submitButton.hidden = false;
  clock.hidden = false;

  const term = new Terminal({ cursorBlink: true, fontSize: 15, scrollback: 5000, screenReaderMode: false,
    theme: { background: '#111418', foreground: '#e6e6e6' } });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(host);
  fit.fit();
  term.focus();
  // F6 leaves the terminal for the toolbar (keyboard-only use); Tab stays the shell's.
  term.attachCustomKeyEventHandler((ev) => {
    if (ev.key === 'F6') {
      if (ev.type === 'keydown') submitButton.focus();
      return false;
    }
    return true;
  });

  let socket: WebSocket | null = null;
  let attempt = 0;
  let timer = 0;
  let finished = false;
  const send = (m: unknown) => socket?.readyState === WebSocket.OPEN && socket.send(JSON.stringify(m));
  // Keys typed while (re)connecting are kept (up to 64 KiB) and sent once the socket opens.
  let typedAhead = '';
  const input = term.onData((data) => {
    if (!send({ type: 'input', data }) && typedAhead.length < 65536) typedAhead += data;
  });
  const resized = term.onResize(({ cols, rows }) => send({ type: 'resize', cols, rows }));
  const onWindowResize = () => fit.fit();
  window.addEventListener('resize', onWindowResize);
  teardown.push(() => {
    finished = true;
    clearTimeout(timer);
    window.removeEventListener('resize', onWindowResize);
    input.dispose();
    resized.dispose();
    socket?.close(1000);
    term.dispose();
  });

  // After the candidate submits, however the end reaches the page first (the
  // answer, the termination message, the close), it says "Submitted".
  let submitted = false;
  const end = (message: string) => {
    if (finished) return;
    finished = true;
    ended(submitted ? 'Submitted' : message);
  };

  const connect = async () => {
    if (finished) return;
    let url: string;
    try {
      url = await socketUrl(sessionId, 'terminal');
    } catch (e) {
      if (e instanceof ApiError && (e.code === 'ACCESS_DENIED' || e.code === 'UNAUTHENTICATED')) return home();
      return retry();
    }
    const ws = new WebSocket(url);
    socket = ws;
    let replayed = false;
    ws.onopen = () => {
      attempt = 0;
      hideNotice();
      send({ type: 'resize', cols: term.cols, rows: term.rows });
      if (typedAhead) send({ type: 'input', data: typedAhead });
      typedAhead = '';
    };
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === 'output') {
        // A reconnect replays the recent output: start from a clean screen.
        if (!replayed) {
          replayed = true;
          term.reset();
        }
        term.write(m.data);
      } else if (m.type === 'status') {
        countdown.set(m.remaining_seconds, m.state);
      } else if (m.type === 'termination') {
        end(m.message || 'This exam has ended.');
      } else if (m.type === 'notice') {
        proctorMessage.textContent = `Message from your proctor: ${m.text}`;
        proctorMessage.hidden = false;
      } else if (m.type === 'watching') {
        watching.hidden = !(m.observers > 0);
      }
    };
    ws.onclose = (ev) => {
      if (finished || socket !== ws) return;
      switch (ev.code) {
        case 4006:
          // Ended before its termination message reached us: ask why.
          return call<Status>('GET', `/v1/sessions/${sessionId}/status`).then(
            (st) => end(st.message || 'This exam has ended.'),
            () => end('This exam has ended.'),
          );
        case 4005:
          finished = true;
          return progress(sessionId);
        case 4008:
          finished = true;
          return elsewhere(sessionId);
        case 4001:
          auth.clear();
          finished = true;
          return signIn('Your sign-in has expired. Please sign in again.');
        case 4003:
          finished = true;
          return home();
        default:
          return retry();
      }
    };
  };
  const retry = () => {
    if (finished) return;
    showNotice('Connection lost. Reconnecting to your terminal…');
    timer = window.setTimeout(connect, backoff(attempt++));
  };
  connect();

  submitButton.onclick = async () => {
    confirmDialog.returnValue = '';
    confirmDialog.showModal();
  };
  confirmDialog.onclose = async () => {
    if (confirmDialog.returnValue !== 'submit') return term.focus();
    submitted = true;
    try {
      await call('POST', `/v1/sessions/${sessionId}/terminate`);
      end('Submitted');
    } catch (e) {
      if (e instanceof ApiError && e.code === 'SESSION_ALREADY_TERMINATED') return end('This exam has ended.');
      submitted = false;
      showAlert(`Your exam could not be submitted: ${explain(e)}`);
    }
  };
}

// Another tab or device opened this exam's terminal: the exam goes on there.
function elsewhere(sessionId: string) {
  const here = el('button', { type: 'button', textContent: 'Continue here' });
  here.addEventListener('click', () => terminalView(sessionId));
  show('elsewhere', el('section', { className: 'card' },
    el('h1', { textContent: 'Your exam is open in another window' }),
    el('p', { textContent: 'Your exam is still running there, and its time is still counting. ' +
      'You can continue in this window instead; the other one then stops.' }),
    here));
}

function ended(message: string) {
  const back = el('button', { type: 'button', textContent: 'Back to my exams' });
  back.addEventListener('click', () => home());
  show('ended', el('section', { className: 'card' }, el('h1', { textContent: message }),
    el('p', { textContent: 'Your environment has been closed. You can leave this page.' }), back));
}

// --- start ------------------------------------------------------------------------

signOutButton.addEventListener('click', async () => {
  // The token is revoked, not only forgotten (best effort: sign-out never waits on it).
  await Promise.race([call('POST', '/v1/auth/logout').catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
  auth.clear();
  signIn();
});

// Production sign-in: the identity provider sends the candidate here with
// #token=<JWT> (a fragment never reaches a server log); it is kept and removed
// from the address bar.
const fromProvider = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromProvider) {
  auth.save(fromProvider, 'candidate');
  history.replaceState(null, '', location.pathname);
}
keepFresh();
home();

// The remaining time, as the server says it. Between two `status` messages
// (they come at least every 5 s) the display counts down from the last one by
// the time elapsed since it arrived, never further than 10 s past it: the
// server's number is the truth, the page does not keep a clock of its own.
const MAX_EXTRAPOLATION_S = 10;
const WARNINGS = [
  { at: 300, text: '5 minutes left. Your exam ends automatically when the time is up.' },
  { at: 60, text: '1 minute left.' },
];

export function formatRemaining(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${two(m)}:${two(s % 60)}`;
}

export class Countdown {
  private remaining = 0;
  private receivedAt = 0;
  private state = '';
  private ticker = 0;
  private warned = new Set<number>();

  constructor(
    private readonly el: HTMLElement,
    private readonly warn: (text: string) => void,
  ) {}

  set(remainingSeconds: number, state: string) {
    this.remaining = remainingSeconds;
    this.state = state;
    this.receivedAt = performance.now();
    this.el.dataset.serverRemaining = String(remainingSeconds);
    if (!this.ticker) this.ticker = window.setInterval(() => this.render(), 250);
    this.render();
  }

  stop() {
    clearInterval(this.ticker);
    this.ticker = 0;
    this.el.hidden = true;
    this.el.textContent = '';
  }

  private render() {
    const elapsed = Math.min(MAX_EXTRAPOLATION_S, (performance.now() - this.receivedAt) / 1000);
    // Before the clock starts (ready) the server's number does not move.
    const left = this.state === 'running' ? this.remaining - elapsed : this.remaining;
    this.el.hidden = false;
    this.el.textContent = `Time left ${formatRemaining(left)}`;
    this.el.setAttribute('aria-label', `Time left: ${formatRemaining(left)}`);
    this.el.classList.toggle('low', left <= 300);
    for (const w of WARNINGS) {
      if (left <= w.at && this.remaining > 0 && !this.warned.has(w.at)) {
        // Reached now, not already past it at the first message after a reload.
        this.warned.add(w.at);
        if (left > w.at - 30) this.warn(w.text);
      }
    }
  }
}

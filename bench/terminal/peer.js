// The bridge a Node.js platform would use: one bash per WebSocket, the same
// JSON frames as examiso's terminal. Usage: node peer.js <port>
const { WebSocketServer } = require('ws');
const pty = require('node-pty');

const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[2] || 3100) });
wss.on('connection', (ws) => {
  const shell = pty.spawn('bash', ['--norc', '--noprofile'], {
    name: 'xterm-256color', cols: 80, rows: 24, cwd: process.env.HOME, env: process.env,
  });
  shell.onData((data) => ws.send(JSON.stringify({ type: 'output', data })));
  shell.onExit(() => ws.close(1000));
  ws.on('message', (raw) => {
    let m;
    try { m = JSON.parse(raw); } catch { return; }
    if (m.type === 'input' && typeof m.data === 'string') shell.write(m.data);
    else if (m.type === 'resize') shell.resize(m.cols, m.rows);
  });
  ws.on('close', () => shell.kill());
});
wss.on('listening', () => console.log('listening'));

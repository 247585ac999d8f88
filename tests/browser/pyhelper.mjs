// pyhelper.mjs - runs one of the Python helpers of the browser tests (runner.py, broker.py:
// thin drivers of the black-box tier's stand-ins) as a child process and talks to it in JSON
// lines: its first line says it is ready, then each command written to its stdin gets one
// answer line. Closing stdin stops it.

import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export class PyHelper {
  constructor(script) {
    this.script = script;
  }

  // Resolves to the helper's first line (what it set up).
  async start() {
    this.proc = spawn(process.env.EI_PYTHON || 'python3', [path.join(here, this.script)], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
    this.answers = [];
    this.waiters = [];
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
    this.exited.then((code) => {
      for (const w of this.waiters.splice(0)) w.fail(new Error(`${this.script} exited (${code})`));
    });
    readline.createInterface({ input: this.proc.stdout }).on('line', (line) => {
      const msg = JSON.parse(line);
      const w = this.waiters.shift();
      if (w) w.done(msg);
      else this.answers.push(msg);
    });
    this.hello = await this.next(60000);
    if (this.hello.error) throw new Error(`${this.script}: ${this.hello.error}`);
    return this.hello;
  }

  next(timeoutMs = 20000) {
    if (this.answers.length) return Promise.resolve(this.answers.shift());
    return new Promise((resolve, reject) => {
      const w = {};
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.script} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      w.done = (m) => {
        clearTimeout(t);
        resolve(m);
      };
      w.fail = (e) => {
        clearTimeout(t);
        reject(e);
      };
      this.waiters.push(w);
    });
  }

  async command(cmd) {
    this.proc.stdin.write(`${JSON.stringify(cmd)}\n`);
    const answer = await this.next();
    if (answer.error) throw new Error(`${this.script}: ${answer.error}`);
    return answer;
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.stdin.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 15000);
    await this.exited;
    clearTimeout(timer);
  }
}

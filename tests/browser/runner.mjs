// runner.mjs - drives runner.py (a fake edge-impulse-linux-runner preview server) from the
// browser tests: one JSON command per line on its stdin, one JSON answer per line back.

import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export class Runner {
  async start() {
    this.proc = spawn(process.env.EI_PYTHON || 'python3', [path.join(here, 'runner.py')], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
    this.answers = [];
    this.waiters = [];
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
    this.exited.then((code) => {
      for (const w of this.waiters.splice(0)) w.reject(new Error(`runner.py exited (${code})`));
    });
    readline.createInterface({ input: this.proc.stdout }).on('line', (line) => {
      const msg = JSON.parse(line);
      const w = this.waiters.shift();
      if (w) w.resolve(msg);
      else this.answers.push(msg);
    });
    const { port } = await this.next();
    this.url = `ws://127.0.0.1:${port}/`;
    return this;
  }

  next(timeoutMs = 15000) {
    if (this.answers.length) return Promise.resolve(this.answers.shift());
    return new Promise((resolve, reject) => {
      const w = { resolve, reject };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error('runner.py did not answer'));
      }, timeoutMs);
      w.resolve = (m) => {
        clearTimeout(t);
        resolve(m);
      };
      this.waiters.push(w);
    });
  }

  async command(cmd) {
    this.proc.stdin.write(`${JSON.stringify(cmd)}\n`);
    const answer = await this.next();
    if (answer.error) throw new Error(`runner.py: ${answer.error}`);
    return answer;
  }

  // Waits for the relay's runner-ws source to connect and ask for camera previews.
  ready() {
    return this.command({ cmd: 'ready' });
  }

  classify(result, jpeg) {
    return this.command({ cmd: 'classify', result, jpeg_b64: jpeg ? jpeg.toString('base64') : null });
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.stdin.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(timer);
  }
}

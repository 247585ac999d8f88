# fake_firmware.py - an Edge Impulse firmware on a pseudo-terminal, for the serial component's
# tests: it prints a banner and waits at its AT prompt; AT+RUNIMPULSE (ended by CR, as
# edge-impulse-run-impulse sends it) starts the impulse, which prints the prediction blocks of a
# fixture (tests/fixtures/serial/classic-classification.txt) over and over; any byte received
# while it runs stops it, as the firmware does. Python 3 standard library only.
import os
import re
import select
import threading
import time
import tty

BLOCK = re.compile(r"(Predictions \(DSP.*?Anomaly prediction: [^\n]*\n)", re.S)


class FakeFirmware:
    """A firmware on a pty: .device is the path a serial reader opens; .runs counts the
    AT+RUNIMPULSE commands it took. close() ends it."""

    def __init__(self, fixture, interval_s=0.2):
        with open(fixture, encoding="utf-8") as f:
            self.blocks = BLOCK.findall(f.read())
        if not self.blocks:
            raise ValueError("no prediction block in %s" % fixture)
        self.interval_s = interval_s
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.device = os.ttyname(slave)
        self._slave = slave  # kept open so the pty lives while no reader has it open
        self.runs = 0
        self._running = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _write(self, text):
        try:
            os.write(self.master, text.replace("\n", "\r\n").encode())
        except OSError:
            pass

    def _loop(self):
        self._write("Hello from Edge Impulse Device SDK.\nType AT+HELP to see a list of commands.\n> ")
        line, i, next_at = b"", 0, 0.0
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.05)
            if r:
                try:
                    data = os.read(self.master, 256)
                except OSError:
                    data = b""
                if self._running and data:
                    self._running = False  # any key stops the impulse
                    self._write("\nInferencing stopped by user\n> ")
                    data = b""
                for c in data:
                    if c in (13, 10):
                        self._command(line.decode("ascii", "replace").strip())
                        line = b""
                    else:
                        line += bytes([c])
            if self._running and time.monotonic() >= next_at:
                self._write(self.blocks[i % len(self.blocks)])
                i += 1
                next_at = time.monotonic() + self.interval_s

    def _command(self, cmd):
        if cmd == "AT+RUNIMPULSE":
            self.runs += 1
            self._running = True
            self._write("\nInferencing settings:\n\tInterval: 10.00 ms.\n")
        elif cmd:
            self._write("\nERR: unknown command %s\n> " % cmd)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

# at_device.py - a stand-in Edge Impulse board running a ready-to-go firmware, on a
# pseudo-terminal: it speaks the AT firmware protocol byte for byte as the firmwares' shared
# at-server does (see server/sources/serial_at.h for the host side): a boot banner ending in the
# prompt "> ", echo of printable bytes, "\r\n" on CR, AT+CONFIG? with its sections, AT+RUNIMPULSE,
# AT+RUNIMPULSECONT and AT+RUNIMPULSEDEBUG[=y|n] (absent before AT 1.6: the bare command), the
# refusals ("Not a valid AT command (b)", "Command not found! (AT+X)", "Error no continuous
# classification available for current model"), and "b" to stop ("Inferencing stopped by user").
# While running it prints one result window per interval in the current SDK format ("#..."
# headers) or the older one ("Predictions (DSP: ...)"), and in debug mode each window as
# "Begin output", "Framebuffer: <base64 JPEG>", the results, dashes, "End output" (the JPEGs are
# tests/fixtures/images/belt-*.jpg, cycled). print_only=True is a device with no AT server: it
# prints windows from the start and never answers.
#
# The relay opens .device: by default a symlink in a temp dir pointing at the pty's slave, so
# unplug() (closes the pty: the relay's read fails with EIO) and replug() (a new pty behind the
# same path, booting with its banner) look to the relay like a USB board pulled and put back.
# Everything the relay wrote is kept in .received; .commands lists the command lines, .runs
# counts impulse starts and .stops the "b" that stopped a running impulse. Python 3 stdlib only.
import base64
import os
import select
import shutil
import tempfile
import threading
import time
import tty

from .paths import fixture_path

JPEGS = ("belt-parcel-centre.jpg", "belt-person.jpg", "belt-empty.jpg")

# The windows' results in turn: classification scores per label (and the anomaly score).
RESULTS = (
    ({"empty": 0.011719, "parcel": 0.976562, "person": 0.011719}, -0.3125),
    ({"empty": 0.0, "parcel": 0.0625, "person": 0.9375}, 0.25),
    ({"empty": 0.96875, "parcel": 0.015625, "person": 0.015625}, 1.4375),
)

BANNER = ("\r\nHello from Edge Impulse Device SDK.\r\n"
          "Compiled on Dec  7 2026 12:00:00\r\n"
          "Type AT+HELP to see a list of commands.\r\n")


def jpeg(i):
    with open(fixture_path("images", JPEGS[i % len(JPEGS)]), "rb") as f:
        return f.read()


def window_text(i, fmt="current", debug=False):
    """Window i as the firmware prints it (LF line ends, as most ports do)."""
    scores, anomaly = RESULTS[i % len(RESULTS)]
    out = ["Starting inferencing in 2 seconds...", "Taking photo..."]
    if debug:
        out += ["Begin output", "Framebuffer: " + base64.b64encode(jpeg(i)).decode()]
    if fmt == "current":
        out += ["Timing: DSP 4 ms, inference 37 ms, anomaly 1 ms, postprocessing 98 us",
                "#Classification predictions:"]
        out += ["  %s: %.6f" % kv for kv in sorted(scores.items())]
    else:
        out += ["Predictions (DSP: 4 ms., Classification: 37 ms., Anomaly: 1 ms.): ",
                "#Classification results:"]
        out += ["    %s: %.6f" % kv for kv in sorted(scores.items())]
    out.append("Anomaly prediction: %.6f" % anomaly)
    if debug:
        out += ["-" * 40, "End output"]
    return "\n".join(out) + "\n"


class AtDevice:
    def __init__(self, at_version="1.8.0", model_type="classification", sensor=3, fmt="current",
                 interval_s=0.15, print_only=False, continuous_ok=False, link=True,
                 device_id="AC:87:A3:0A:2D:1B", device_type="ESPRESSIF_ESP32"):
        self.at_version = at_version  # None: no "AT Version" line (1.0.0 to the host)
        self.model_type = model_type
        self.sensor = sensor
        self.fmt = fmt
        self.interval_s = interval_s
        self.print_only = print_only
        self.continuous_ok = continuous_ok
        self.device_id = device_id
        self.device_type = device_type
        self.received = b""
        self.commands = []
        self.runs = 0
        self.stops = 0
        self.windows = 0  # whole windows printed, over every plug
        self._mu = threading.Lock()
        self._dir = tempfile.mkdtemp(prefix="ei-bb-at-") if link else None
        self.device = os.path.join(self._dir, "ttyMCU") if link else None
        self._plug()

    # ---- the pty and its thread ----

    def _plug(self):
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self.master)
        if self._dir:
            tmp = self.device + ".new"
            os.symlink(os.ttyname(self._slave), tmp)
            os.replace(tmp, self.device)
        else:
            self.device = os.ttyname(self._slave)
        self._running = None  # None, or "normal" / "continuous" / "debug"
        self._line = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(self.master, self._stop),
                                        daemon=True)
        self._thread.start()

    def _write(self, text, fd=None):
        data = text.encode() if isinstance(text, str) else text
        fd = self.master if fd is None else fd
        while data:
            try:
                n = os.write(fd, data)
            except BlockingIOError:
                time.sleep(0.005)
                continue
            except OSError:
                return
            data = data[n:]

    def _loop(self, master, stop):
        if self.print_only:
            self._running = "normal"
        else:
            self._write(BANNER + "> ", master)
        next_at = time.monotonic() + self.interval_s
        while not stop.is_set():
            r, _, _ = select.select([master], [], [], 0.02)
            if r:
                try:
                    data = os.read(master, 256)
                except OSError:
                    return
                with self._mu:
                    self.received += data
                if not self.print_only:
                    self._input(data)
            if self._running and time.monotonic() >= next_at and not stop.is_set():
                self._write(window_text(self.windows, self.fmt, self._running == "debug"),
                            master)
                with self._mu:
                    self.windows += 1
                next_at = time.monotonic() + self.interval_s

    def _input(self, data):
        for c in data:
            if self._running:
                if c == ord("b"):  # only b stops, checked between windows
                    self._running = None
                    with self._mu:
                        self.stops += 1
                    self._write("Inferencing stopped by user\r\n> ")
                continue
            if c == 13:
                self._write("\r\n")
                line = self._line.decode("ascii", "replace")
                self._line = b""
                self._command(line)
            elif 32 <= c < 127:
                self._line += bytes([c])
                self._write(bytes([c]))  # echo

    # ---- the AT server ----

    def _config(self):
        lines = ["===== Device info =====",
                 "ID:         " + self.device_id,
                 "Type:       " + self.device_type]
        if self.at_version:
            lines.append("AT Version: " + self.at_version)
        lines += ["Data Transfer Baudrate: 921600",
                  "===== Sensors ======",
                  "Name: OV2640, Max sample length: 0s, Frequencies: []",
                  "===== Snapshot ======",
                  "Has snapshot:    1",
                  "Support stream:  1",
                  "Color depth:     RGB",
                  "Resolutions:     [ 96x96, 160x120, 320x240 ]",
                  "===== Inference ======",
                  "Sensor:           %d" % self.sensor,
                  "Capture Interval: 0",
                  "Model type:       " + self.model_type,
                  "===== WIFI =====",
                  "SSID:      ",
                  "Password:  ",
                  "Security:  0",
                  "MAC:       00:00:00:00:00:00",
                  "===== Upload settings =====",
                  "Api Key:   ",
                  "Host:      ingestion.edgeimpulse.com",
                  "===== Remote management =====",
                  "URL:        studio.edgeimpulse.com",
                  "Connected:  0",
                  "Last error: "]
        return "\r\n".join(lines) + "\r\n"

    def _start(self, mode, reply=""):
        with self._mu:
            self.runs += 1
        self._write(reply + "Inferencing settings:\n\tImage resolution: 96x96\n"
                    "\tFrame size: 9216\n\tNo. of classes: 3\n"
                    "Starting inferencing, press 'b' to break\n")
        self._running = mode

    def _command(self, cmd):
        with self._mu:
            self.commands.append(cmd)
        debug_new = self.at_version and tuple(int(x) for x in self.at_version.split(".")[:2]) >= (1, 6)
        if cmd == "":
            self._write("> ")
        elif cmd == "AT+CONFIG?":
            self._write(self._config() + "\r\n> ")
        elif cmd == "AT+RUNIMPULSE":
            self._start("normal")
        elif cmd == "AT+RUNIMPULSECONT":
            if self.continuous_ok:
                self._start("continuous")
            else:
                self._write("Error no continuous classification available for current model"
                            "\r\n> ")
        elif (debug_new and cmd in ("AT+RUNIMPULSEDEBUG=y", "AT+RUNIMPULSEDEBUG=n")) or \
                (not debug_new and cmd == "AT+RUNIMPULSEDEBUG"):
            self._start("debug", "OK\r\n")
        elif cmd.startswith("AT+"):
            self._write("Command not found! (%s)\r\n> " % cmd)
        else:
            self._write("Not a valid AT command (%s)\n> " % cmd)

    # ---- for the tests ----

    def sent(self):
        """What the relay wrote so far."""
        with self._mu:
            return self.received

    def unplug(self, mid_window=True, wait=None):
        """The board pulled out, optionally in the middle of a window (its results up to the
        middle of the last score line): the pty is closed (the relay's read fails) and the path
        removed. wait(n), when given, is called after the n bytes of the half window were
        written and must return once the relay has read them (a closed pty loses unread
        bytes)."""
        self._stop.set()
        self._thread.join(5)
        if mid_window:
            text = window_text(self.windows, self.fmt, self._running == "debug")
            half = text[:text.index("Anomaly prediction") - 4].encode()
            self._write(half)
            if wait:
                wait(len(half))
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        if self._dir and os.path.lexists(self.device):
            os.unlink(self.device)

    def replug(self):
        """Plugged back in: a new pty behind the same path, booting with its banner."""
        self._plug()

    def close(self):
        self._stop.set()
        self._thread.join(5)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)

# test_sources_serial_at.py - black-box tests of the "serial" source speaking the Edge Impulse AT
# firmware protocol to a stand-in board on a pseudo-terminal (harness/at_device.py): handshake,
# AT+CONFIG? shown as the source's model, the impulse started per the "impulse" setting and its
# results stored (current and older formats), debug windows stored with their JPEG, "b" at stop,
# an unplug mid-window and a replug (handshake and start again, nothing half-stored), a device
# that only prints, "impulse": "off" never writing, and a command child stopping on SIGTERM.
import time

from harness import (Relay, check, eq, run_tests, source_status, sources_cfg, wait_for,
                     wait_status, wait_stored)
from harness.at_device import RESULTS, AtDevice, jpeg

START = b"b\rAT+CONFIG?\rAT+RUNIMPULSE\r"


def serial_src(name, dev, **extra):
    src = {"name": name, "kind": "serial", "device": dev.device}
    src.update(extra)
    return src


def check_results(items, first_window=0, what=""):
    """Each stored inference is window first_window + i of the stand-in, whole."""
    for i, it in enumerate(items):
        scores, anomaly = RESULTS[(first_window + i) % len(RESULTS)]
        eq(it["result"].get("classification"), scores, "%s window %d scores" % (what, i))
        eq(it["result"].get("anomaly"), anomaly, "%s window %d anomaly" % (what, i))


def test_current_format_and_config():
    dev = AtDevice()
    try:
        with Relay(sources_cfg([serial_src("mcu", dev)])) as r:
            st = wait_status(r, "mcu", "the device's configuration as model",
                             lambda s: s.get("model") is not None)
            eq(st["model"], {"device_id": "AC:87:A3:0A:2D:1B", "device_type": "ESPRESSIF_ESP32",
                             "at_version": "1.8.0", "model_type": "classification",
                             "resolutions": "[ 96x96, 160x120, 320x240 ]",
                             "transfer_baudrate": 921600, "sensor": "camera"}, "model")
            items = wait_stored(r, "mcu", 3, exact=False)[:3]
            check_results(items, 0, "current")
            eq(items[0]["timing"], {"dsp": 4, "classification": 37, "anomaly": 1,
                                    "postprocessing": 0.098}, "timing")
            eq(items[0]["model"], {"width": 96, "height": 96}, "model size from the settings")
            eq(dev.sent(), START, "what the relay wrote (b, AT+CONFIG?, AT+RUNIMPULSE; CR only)")
            eq(dev.commands, ["b", "AT+CONFIG?", "AT+RUNIMPULSE"], "commands the device took")
            st = source_status(r, "mcu")
            eq(st["state"], "running", "state")
            eq(st["last_error"], None, "no error")
        # the relay stopped: it sent b and the device stopped its impulse (the relay waited
        # for its answer, so the device has read it)
        eq(dev.sent(), START + b"b\r", "b written at stop")
        eq(dev.stops, 1, "the impulse stopped by the relay's b")
    finally:
        dev.close()


def test_serial_device_setting():
    """serial_device / serial_baud / serial_impulse (the serial component's keys) run the same
    source, named "serial"."""
    dev = AtDevice()
    try:
        cfg = {"serial_device": dev.device, "serial_baud": 115200, "serial_impulse": "normal"}
        with Relay(cfg) as r:
            check_results(wait_stored(r, "serial", 2, exact=False)[:2], 0, "serial_device")
            eq(source_status(r, "serial")["kind"], "serial", "kind")
            eq(dev.commands[:3], ["b", "AT+CONFIG?", "AT+RUNIMPULSE"], "commands")
    finally:
        dev.close()


def test_older_format():
    dev = AtDevice(fmt="classic", at_version="1.3.0")
    try:
        with Relay(sources_cfg([serial_src("old", dev, impulse="normal")])) as r:
            items = wait_stored(r, "old", 3, exact=False)[:3]
            check_results(items, 0, "classic")
            eq(items[0]["timing"], {"dsp": 4, "classification": 37, "anomaly": 1}, "timing")
            eq(source_status(r, "old")["model"]["at_version"], "1.3.0", "AT version")
    finally:
        dev.close()


def test_debug_images():
    """impulse debug: AT+RUNIMPULSEDEBUG=n on AT 1.8, the bare command on a device with no AT
    Version line (1.0.0); every window's Framebuffer JPEG is its inference's image."""
    new, old = AtDevice(), AtDevice(at_version=None)
    try:
        srcs = [serial_src("dbg", new, impulse="debug"), serial_src("dbg-old", old, impulse="debug")]
        with Relay(sources_cfg(srcs)) as r:
            for name, dev, cmd in (("dbg", new, "AT+RUNIMPULSEDEBUG=n"),
                                   ("dbg-old", old, "AT+RUNIMPULSEDEBUG")):
                items = wait_stored(r, name, 3, exact=False)[:3]
                check_results(items, 0, name)
                eq(dev.commands, ["b", "AT+CONFIG?", cmd], "%s commands" % name)
                for i, it in enumerate(items):
                    check(it["image"] is not None, "%s window %d has an image" % (name, i))
                    eq(it["image"]["mime"], "image/jpeg", "mime")
                    got = r.get(it["image"]["url"])
                    eq(got.status, 200, "image fetch")
                    eq(got.body, jpeg(i), "%s window %d image bytes" % (name, i))
                check(source_status(r, name)["images"] >= 3, "images counter")
            eq(source_status(r, "dbg-old")["model"]["at_version"], "1.0.0", "absent = 1.0.0")
    finally:
        new.close()
        old.close()


def test_continuous():
    """impulse continuous: a microphone firmware runs AT+RUNIMPULSECONT; a camera firmware
    refuses it, the refusal shows in last_error and plain AT+RUNIMPULSE runs instead."""
    mic, cam = AtDevice(continuous_ok=True, sensor=1), AtDevice()
    try:
        srcs = [serial_src("mic", mic, impulse="continuous"),
                serial_src("cam", cam, impulse="continuous")]
        with Relay(sources_cfg(srcs)) as r:
            for name, dev in (("mic", mic), ("cam", cam)):
                check_results(wait_stored(r, name, 3, exact=False)[:3], 0, name)
            eq(mic.commands, ["b", "AT+CONFIG?", "AT+RUNIMPULSECONT"], "mic commands")
            eq(cam.commands, ["b", "AT+CONFIG?", "AT+RUNIMPULSECONT", "AT+RUNIMPULSE"],
               "cam commands")
            eq(source_status(r, "mic")["model"]["sensor"], "microphone", "mic sensor")
            st = source_status(r, "cam")
            eq((st["state"], st["last_error"]),
               ("running", "the device refused: Error no continuous classification available "
                           "for current model"), "cam status")
    finally:
        mic.close()
        cam.close()


def test_replug_mid_window():
    dev = AtDevice()
    try:
        with Relay(sources_cfg([serial_src("plug", dev)])) as r:
            before = wait_stored(r, "plug", 2, exact=False)
            got = source_status(r, "plug")["bytes"]
            # half a window, read by the relay, then the board is pulled out
            dev.unplug(mid_window=True, wait=lambda n: wait_status(
                r, "plug", "the half window read", lambda s: s["bytes"] >= got + n))
            wait_status(r, "plug", "backoff after the unplug", lambda s: s["state"] == "backoff")
            n_before = len(wait_stored(r, "plug", len(before), exact=False))
            check(source_status(r, "plug")["dropped"] >= 1, "the cut-off window was dropped")
            dev.replug()
            wait_status(r, "plug", "running again",
                        lambda s: s["state"] == "running" and s["reconnects"] >= 1)
            wait_for("a second handshake and start", lambda: list(dev.commands), 30,
                     until=lambda c: c.count("AT+RUNIMPULSE") == 2, relay=r)
            items = wait_stored(r, "plug", n_before + 3, exact=False)
            for i, it in enumerate(items):
                eq(len(it["result"]["classification"]), 3, "stored whole (inference %d)" % i)
            eq(dev.commands, ["b", "AT+CONFIG?", "AT+RUNIMPULSE"] * 2, "commands")
            check(dev.sent().endswith(START), "the new plug got b, AT+CONFIG?, AT+RUNIMPULSE")
    finally:
        dev.close()


def test_print_only_and_off():
    """A device with no AT server still has its results stored (no error, no model); impulse
    "off" never writes a byte, while a device beside it in the same relay is written to."""
    printer, quiet, control = AtDevice(print_only=True), AtDevice(), AtDevice()
    try:
        srcs = [serial_src("printer", printer), serial_src("quiet", quiet, impulse="off"),
                serial_src("control", control)]
        with Relay(sources_cfg(srcs)) as r:
            items = wait_stored(r, "printer", 3, exact=False)[:3]
            check_results(items, 0, "print-only")
            check(printer.sent().startswith(b"b\r"), "the handshake was tried")
            wait_for("the control device started", lambda: list(control.commands), 30,
                     until=lambda c: "AT+RUNIMPULSE" in c, relay=r)
            wait_status(r, "quiet", "the quiet device's banner read",
                        lambda s: s["bytes"] > 0 and s["state"] == "running")
            st = source_status(r, "printer")
            eq((st["state"], st["last_error"], st["model"]), ("running", None, None),
               "print-only status")
            eq(source_status(r, "quiet")["model"], None, "no model with impulse off")
        eq(quiet.sent(), b"", "impulse off: nothing written, not even at stop")
        eq(quiet.commands, [], "impulse off: no command")
    finally:
        for d in (printer, quiet, control):
            d.close()


def test_command_stops_on_sigterm():
    """A command's child gets SIGTERM at stop and ends at once (no 2 s wait for SIGKILL)."""
    srcs = [{"name": "cmd", "kind": "serial", "command": "echo ready; exec sleep 60"}]
    r = Relay(sources_cfg(srcs))
    with r:
        wait_status(r, "cmd", "the command's output read", lambda s: s["bytes"] > 0)
        t0 = time.monotonic()
        r.stop()
        took = time.monotonic() - t0
    check(took < 1.5, "stop took %.2f s (a child ignoring SIGTERM waits 2 s)" % took)


if __name__ == "__main__":
    run_tests([test_current_format_and_config, test_serial_device_setting, test_older_format,
               test_debug_images, test_continuous, test_replug_mid_window,
               test_print_only_and_off, test_command_stops_on_sigterm])

#!/usr/bin/env python3
"""gen_docs.py - the package's example configuration (/etc/default/ei-relay, an EnvironmentFile)
and man page (ei-relay.1), both generated from the binary's own `--help` so they list exactly the
settings of the settings table (server/config/config_table.c) with its defaults and help texts,
and can never drift from it.

Usage: gen_docs.py HELP_FILE VERSION OUT_DIR
  HELP_FILE  the output of `ei-relay --help` (scripts/package.sh runs the binary it packages,
             under qemu-user for a foreign architecture)
  writes OUT_DIR/ei-relay.default and OUT_DIR/ei-relay.1

The man page's date is SOURCE_DATE_EPOCH (UTC) when set, so a rebuild is byte-identical.
As a module, parse_help() is what tests/install/test_docs.py checks the files against.
"""
import datetime
import os
import re
import sys

# One setting line of --help: "  --flag META  EI_RELAY_NAME  (default D)  help [range]"
SETTING_RE = re.compile(r"^  --(?P<flag>[a-z0-9-]+)(?: (?P<meta>\S+))?\s+"
                        r"(?P<env>EI_RELAY_[A-Z0-9_]+)\s+\(default (?P<default>.*?)\)  "
                        r"(?P<help>.*?)(?: \[(?P<range>(?:>= |-?\d+\.\.)[^\]]*)\])?$")
IGNORED_TITLE = "Accepted for compatibility"

# The unit (packaging/ei-relay.service) passes these flags, which win over the environment.
UNIT_FLAGS = {"db_path": "/var/lib/ei-relay/ei-relay.db"}


def parse_help(text):
    """(usage lines, prose paragraphs, settings, ignored seed keys) of --help's text. A setting
    is a dict: name, flag, meta, env, default (None when unset), help, range."""
    usage, prose, settings, ignored = [], [], [], []
    lines = text.splitlines()
    i = 0
    while i < len(lines) and lines[i].strip():  # "usage: ei-relay ..." and its indented rest
        usage.append(lines[i][len("usage: "):])
        i += 1
    para = []
    for line in lines[i:]:
        m = SETTING_RE.match(line)
        if m:
            d = m.groupdict()
            d["name"] = d["flag"].replace("-", "_")
            d["default"] = None if d["default"] == "unset" else d["default"]
            settings.append(d)
        elif line.startswith(IGNORED_TITLE):
            para = None  # the next line is the list
        elif para is None:
            ignored = line.split()
            para = []
        elif line.strip():
            para.append(line.strip())
        elif para:
            prose.append(" ".join(para))
            para = []
    if para:
        prose.append(" ".join(para))
    if not usage or not settings:
        raise ValueError("not the output of ei-relay --help: no usage or no setting lines")
    return usage, prose, settings, ignored


def setting_doc(s):
    """The help text, its range, and where it comes from."""
    text = s["help"]
    if s["range"]:
        text += " [%s]" % s["range"]
    return text


def env_value(value):
    """A value as systemd's EnvironmentFile reads it: single quotes when it holds anything but
    plain characters (JSON, spaces)."""
    if re.fullmatch(r"[A-Za-z0-9_./:@%+,-]*", value):
        return value
    return "'%s'" % value


def env_template(version, settings, ignored):
    out = [
        "# /etc/default/ei-relay - settings of the ei-relay service, read by its systemd unit",
        "# (EnvironmentFile=). Every setting is here, commented out at its built-in default:",
        "# uncomment a line, change the value, then run: systemctl restart ei-relay",
        "#",
        "# Generated from 'ei-relay --help' of ei-relay %s; 'man ei-relay' says the same." % version,
        "# One NAME=value a line, read by systemd (no shell): quote JSON or text with spaces in",
        "# single quotes; \"__none__\" resets a setting to its default. A JSON file of settings can",
        "# be added with --config FILE ('systemctl edit ei-relay'); this file wins over it, and the",
        "# unit's flags win over this file.",
    ]
    for s in settings:
        out.append("")
        out.append("# %s: %s" % (s["name"], setting_doc(s)))
        if s["name"] in UNIT_FLAGS:
            out.append("# (the unit passes --%s %s, which wins over this line)"
                       % (s["flag"], UNIT_FLAGS[s["name"]]))
        if s["default"] is None:
            out.append("# unset by default")
            out.append("#%s=" % s["env"])
        else:
            out.append("#%s=%s" % (s["env"], env_value(s["default"])))
    if ignored:
        out.append("")
        out.append("# Edge Impulse recipe keys accepted for compatibility and ignored:")
        out.append("#   " + " ".join(ignored))
    return "\n".join(out) + "\n"


def roff(text):
    """Text escaped for a roff line: backslashes, hyphens, a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def man_page(version, date, usage, prose, settings, ignored):
    out = [
        '.TH EI\\-RELAY 1 "%s" "ei\\-relay %s" "User Commands"' % (date, version),
        ".SH NAME",
        "ei\\-relay \\- Edge Impulse inference relay: local cache, LAN API and dashboard, "
        "AWS IoT Core forwarding",
        ".SH SYNOPSIS",
        ".nf",
    ]
    out += [roff(u) for u in usage]
    out += [".fi", ".SH DESCRIPTION",
            "ei\\-relay receives the inferences of Edge Impulse runners (HTTP, the runner's "
            "preview WebSocket, serial output), commits each to a local SQLite cache before it "
            "acknowledges it, serves them on the LAN (REST API, a live WebSocket stream and a "
            "dashboard) and forwards them to AWS IoT Core over MQTT with durable "
            "store\\-and\\-forward."]
    for p in prose:
        out += [".PP", roff(p)]
    out += [".SH SETTINGS",
            "Each setting is a flag, an environment variable and a key of the JSON file "
            "given with \\fB\\-\\-config\\fR; the packaged service reads the environment "
            "from \\fI/etc/default/ei\\-relay\\fR."]
    for s in settings:
        flag = "\\fB\\-\\-%s\\fR" % s["flag"].replace("-", "\\-")
        if s["meta"]:
            flag += " \\fI%s\\fR" % roff(s["meta"])
        default = roff(s["default"]) if s["default"] is not None else "unset"
        out += [".TP", flag + ", \\fB%s\\fR" % s["env"],
                "%s (default: %s)" % (roff(setting_doc(s)), default)]
    if ignored:
        out += [".PP", "Accepted for compatibility with the Edge Impulse recipes and ignored: " +
                ", ".join(roff(k) for k in ignored) + "."]
    out += [
        ".SH FILES",
        ".TP", "\\fI/etc/default/ei\\-relay\\fR",
        "the service's settings, every one listed and commented (a copy is in "
        "\\fI/usr/share/doc/ei\\-relay/examples/\\fR)",
        ".TP", "\\fI/var/lib/ei\\-relay/ei\\-relay.db\\fR",
        "the cache (SQLite), owned by the \\fBei\\-relay\\fR user; the generated admin token "
        "\\fIei\\-relay.token\\fR (mode 0600) is next to it",
        ".TP", "\\fI/usr/share/ei\\-relay/web/\\fR",
        "the dashboard (the default \\fBweb_root\\fR of the packaged binary)",
        ".TP", "\\fI/lib/systemd/system/ei\\-relay.service\\fR",
        "the unit: installed, not enabled (\\fBsystemctl enable \\-\\-now ei\\-relay\\fR)",
        ".SH EXIT STATUS",
        ".TP", "0", "stopped cleanly (SIGTERM, SIGINT)",
        ".TP", "1", "a start\\-up failure other than the configuration",
        ".TP", "2", "a bad configuration (one log line names the key); systemd does not "
        "restart it",
        ".TP", "75", "a restart was requested (the \\fBrestart\\fR command over MQTT); systemd "
        "starts it again",
        ".SH EXAMPLES",
        "The admin token of the packaged service:",
        ".PP", ".nf",
        "runuser \\-u ei\\-relay \\-\\- ei\\-relay token \\-\\-db\\-path "
        "/var/lib/ei\\-relay/ei\\-relay.db",
        ".fi",
        ".SH SEE ALSO",
        "\\fBsystemctl\\fR(1), \\fBsystemd.exec\\fR(5)",
    ]
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) != 4:
        sys.exit("usage: gen_docs.py HELP_FILE VERSION OUT_DIR")
    with open(argv[1]) as f:
        usage, prose, settings, ignored = parse_help(f.read())
    version, out_dir = argv[2], argv[3]
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or None
    when = (datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc) if epoch
            else datetime.datetime.now(datetime.timezone.utc))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "ei-relay.default"), "w") as f:
        f.write(env_template(version, settings, ignored))
    with open(os.path.join(out_dir, "ei-relay.1"), "w") as f:
        f.write(man_page(version, when.strftime("%Y-%m-%d"), usage, prose, settings, ignored))


if __name__ == "__main__":
    main(sys.argv)

# js_json.py - JSON as Node's JSON.stringify writes it and JSON.parse reads it, for the runner
# stand-in (runner_stub.py): its replies must match the real runner's byte for byte, and its
# errors must read like V8's. Also JavaScript's typeof and String() of parsed values, which the
# runner's error messages quote. Python 3 standard library only.
import json
import math
import re


class _Undefined:
    """JavaScript's `undefined`: a member holding it is left out by js_json."""

    def __repr__(self):
        return "undefined"


UNDEFINED = _Undefined()


def js_number(v):
    """A number as JavaScript's Number#toString writes it (shortest round trip digits)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        return "null"  # what JSON.stringify makes of them
    if v == 0:
        return "0"
    sign = "-" if v < 0 else ""
    r = repr(abs(v))
    mant, _, exp = r.partition("e")
    whole, _, frac = mant.partition(".")
    if frac == "0":
        frac = ""
    digits = whole + frac
    point = len(whole) + (int(exp) if exp else 0)  # decimal point after `point` digits
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        es = ("+" if e >= 0 else "-") + str(abs(e))
        out = digits + "e" + es if k == 1 else digits[0] + "." + digits[1:] + "e" + es
    return sign + out


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def js_string(s):
    out = json.dumps(s, ensure_ascii=False)
    # a str never holds a paired surrogate, so any surrogate here is lone: JS escapes those
    return _LONE_SURROGATE.sub(lambda m: "\\u%04x" % ord(m.group()), out)


def js_json(v):
    """JSON.stringify(v): compact, members in insertion order, undefined members left out."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return js_number(v)
    if isinstance(v, str):
        return js_string(v)
    if isinstance(v, (bytes, bytearray)):  # a Node Buffer's toJSON
        return '{"type":"Buffer","data":[' + ",".join(str(b) for b in v) + "]}"
    if isinstance(v, dict):
        parts = [js_string(str(k)) + ":" + js_json(x) for k, x in v.items()
                 if x is not UNDEFINED]
        return "{" + ",".join(parts) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join("null" if x is UNDEFINED else js_json(x) for x in v) + "]"
    if v is UNDEFINED:
        return "null"
    raise TypeError("js_json: cannot write %r" % (v,))


def _js_typeof(v):
    if v is UNDEFINED:
        return "undefined"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "object"  # null, objects, arrays


def _js_str(v):
    """String(v) for the values a parsed JSON message can hold."""
    if v is UNDEFINED:
        return "undefined"
    if v is None:
        return "null"
    if isinstance(v, (bool, int, float)):
        return js_number(v)
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return ",".join("" if x is None else _js_str(x) for x in v)
    return "[object Object]"


def _reject_constant(name):
    raise ValueError("Unexpected token %s in JSON" % name[0])


def _js_parse(text):
    """JSON.parse(text); ValueError with a message like V8's on bad input."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        if e.pos >= len(text):
            raise ValueError("Unexpected end of JSON input")
        raise ValueError("Unexpected token %s in JSON at position %d" % (text[e.pos], e.pos))


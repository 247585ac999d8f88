# test_cli.py - the binary's other faces: --demo fills the cache through the real ingest path,
# `export --dir` writes <guid>.json/<guid>.img pairs as the old enable_cache_to_file did, and
# `import --dir` loads them into a fresh database (idempotently) that then serves the same data.
import json
import os
import subprocess

from harness import READ_TOKEN, Relay, check, eq, jpeg_dims, relay_bin, run_tests, wait_for


def wait_for_rows(relay, n, timeout_s=30):
    """Polls health (a protocol round trip) until the cache holds n rows."""
    return wait_for("%d rows in the cache" % n, lambda: relay.health()["db"]["rows"], timeout_s,
                    until=lambda rows: rows >= n, relay=relay)


def run_tool(relay, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EI_RELAY_")}
    p = subprocess.run([relay_bin(), "--config", relay.config_path] + list(args),
                       capture_output=True, text=True, timeout=120, env=env)
    return p.returncode, p.stdout + p.stderr


def test_demo_fills_cache_with_images():
    with Relay({"demo": True, "demo_interval_ms": 20}) as r:
        wait_for_rows(r, 8)
        items = r.list_all()
        kinds = {it["kind"] for it in items}
        check({"object-detection", "classification", "empty"} <= kinds, "demo kinds: %r" % kinds)
        for it in items:
            eq(it["source"], "demo", "source")
            check(it["image"] is not None, "demo inference has an image")
            eq(it["model"], {"width": 96, "height": 96}, "model resolution recorded")
        boxes = [it for it in items if it["kind"] == "object-detection"]
        img = r.request("GET", boxes[0]["image"]["url"], token=READ_TOKEN)
        eq(img.status, 200, "image status")
        eq(jpeg_dims(img.body), (240, 240), "demo frame size")


def test_export_import_roundtrip():
    with Relay({"demo": True, "demo_interval_ms": 20}) as src:
        wait_for_rows(src, 6)
        src.stop()
        out = os.path.join(src.dir, "guidfiles")
        code, log = run_tool(src, "export", "--dir", out)
        eq(code, 0, "export exit code: " + log)
        names = sorted(os.listdir(out))
        jsons = [n for n in names if n.endswith(".json")]
        imgs = [n for n in names if n.endswith(".img")]
        check(len(jsons) >= 6, "json files: %d" % len(jsons))
        eq(len(imgs), len(jsons), "every demo inference has its .img")
        check(not [n for n in names if n.startswith(".")], "no temporary files left")
        first = json.load(open(os.path.join(out, jsons[0])))
        eq(list(first)[:5], ["time_ms", "info", "inference_count", "total_inferences", "id"],
           "IoT Core message field order")
        eq(first["id"] + ".json", jsons[0], "file named after the guid")
        check(open(os.path.join(out, imgs[0]), "rb").read(3) == b"\xff\xd8\xff", "img is a JPEG")

        with Relay() as dst:
            dst.stop()
            code, log = run_tool(dst, "import", "--dir", out)
            eq(code, 0, "import exit code: " + log)
            check("%d written, 0 skipped, 0 failed" % len(jsons) in log, log)
            code, log = run_tool(dst, "import", "--dir", out)
            eq(code, 0, "second import exit code: " + log)
            check("0 written, %d skipped, 0 failed" % len(jsons) in log, log)
            dst.start()
            got = {it["id"]: it for it in dst.list_all()}
            eq(len(got), len(jsons), "imported rows")
            for name in jsons:
                msg = json.load(open(os.path.join(out, name)))
                it = got[msg["id"]]
                eq(it["ts"], msg["ts"], "ts kept")
                check(it["image"] is not None, "image imported")
                data = dst.request("GET", it["image"]["url"], token=READ_TOKEN).body
                eq(data, open(os.path.join(out, msg["id"] + ".img"), "rb").read(), "image bytes")


def test_export_needs_dir():
    with Relay() as r:
        r.stop()
        code, log = run_tool(r, "export")
        eq(code, 2, "exit code without --dir")
        check("--dir" in log, log)


TESTS = [test_demo_fills_cache_with_images, test_export_import_roundtrip, test_export_needs_dir]

if __name__ == "__main__":
    run_tests(TESTS)

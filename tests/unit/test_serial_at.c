/* test_serial_at.c - the AT firmware state machine (server/sources/serial_at.c) against scripted
 * device transcripts in the firmware's byte format: each scenario is run with every device reply
 * split in two at every byte (and byte by byte), and must give the same commands, events,
 * configuration and final state. Output pacing (5-byte pieces 20 ms apart) is checked on every
 * write. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sources/serial_at.h"

typedef struct rec {
    char text[2048]; /* events as "NAME:text|" */
} rec;

static const char *const ev_names[] = {"PROMPT",    "CONFIG", "STARTED", "REFUSED",
                                       "NO_PROMPT", "LEFT",   "STOPPED"};

static void on_event(void *arg, serial_at_event ev, const char *text)
{
    rec *r = arg;
    size_t n = strlen(r->text);
    snprintf(r->text + n, sizeof r->text - n, "%s%s%s|", ev_names[ev], text[0] ? ":" : "", text);
}

/* What a step does before draining the output: nothing, serial_at_stop, or advancing the clock
 * by advance ms and ticking. */
enum { ACT_NONE, ACT_STOP, ACT_TICK };

typedef struct step {
    int action;
    int64_t advance;
    const char *out;    /* what must be written (all of it, paced) */
    const char *device; /* then the device's bytes */
} step;

/* Writes everything due, piece by piece, checking the pacing; appends it to out. */
static void drain(serial_at *a, int64_t *now, char *out, size_t cap)
{
    size_t len = strlen(out);
    for (int i = 0; i < 64; i++) {
        const uint8_t *d = NULL;
        size_t n = serial_at_output(a, *now, &d);
        if (n == 0) break;
        CHECK(n <= SERIAL_AT_PIECE);
        if (len + n < cap) {
            memcpy(out + len, d, n);
            out[len += n] = '\0';
        }
        serial_at_wrote(a, n, *now);
        /* the next piece waits its gap */
        CHECK_EQ_INT(serial_at_output(a, *now + SERIAL_AT_PIECE_GAP_MS - 1, &d), 0);
        *now += SERIAL_AT_PIECE_GAP_MS;
    }
}

/* Runs steps with each device reply split at byte `split` (SIZE_MAX: byte by byte); the
 * events, the final state and the machine (for its config) are left for the caller. */
static serial_at *run(serial_at_mode mode, const step *steps, size_t n, size_t split, rec *r,
                      int64_t *now_out)
{
    serial_at *a = NULL;
    er_err err;
    serial_at_opts o = {.mode = mode, .event = on_event, .arg = r};
    int64_t now = 1000;
    memset(r, 0, sizeof *r);
    CHECK_EQ_INT(serial_at_create(&o, &a, &err), ER_OK);
    if (!a) return NULL;
    serial_at_start(a, now);
    for (size_t i = 0; i < n; i++) {
        char out[256] = "";
        const step *s = &steps[i];
        if (s->action == ACT_STOP) serial_at_stop(a, now);
        if (s->action == ACT_TICK) {
            now += s->advance;
            serial_at_tick(a, now);
        }
        drain(a, &now, out, sizeof out);
        if (strcmp(out, s->out) != 0) {
            fprintf(stderr, "  step %zu (split %zu): wrote \"%s\", want \"%s\"\n", i, split, out,
                    s->out);
            check_failed++;
        }
        size_t len = strlen(s->device);
        if (split == SIZE_MAX) {
            for (size_t k = 0; k < len; k++)
                serial_at_feed(a, (const uint8_t *)s->device + k, 1, now);
        } else {
            size_t k = split < len ? split : len;
            serial_at_feed(a, (const uint8_t *)s->device, k, now);
            serial_at_feed(a, (const uint8_t *)s->device + k, len - k, now);
        }
        /* a prompt counts after its quiet time */
        now += SERIAL_AT_PROMPT_QUIET_MS;
        serial_at_tick(a, now);
        now += 10;
    }
    *now_out = now;
    return a;
}

/* Runs the scenario at every split and byte-wise: same events and state each time. */
static void scenario(const char *name, serial_at_mode mode, const step *steps, size_t n,
                     const char *want_events, serial_at_state want_state)
{
    size_t longest = 0;
    int before = check_failed;
    for (size_t i = 0; i < n; i++)
        if (strlen(steps[i].device) > longest) longest = strlen(steps[i].device);
    for (size_t split = 0; split <= longest + 1; split++) {
        rec r;
        int64_t now;
        size_t sp = split == longest + 1 ? SIZE_MAX : split;
        serial_at *a = run(mode, steps, n, sp, &r, &now);
        CHECK_EQ_STR(r.text, want_events);
        CHECK_EQ_INT(serial_at_state_get(a), want_state);
        serial_at_destroy(a);
        if (check_failed != before) {
            fprintf(stderr, "  ... scenario %s, split %zu\n", name, sp);
            return;
        }
    }
}

#define STEPS(a) a, sizeof a / sizeof a[0]

/* AT+CONFIG? as a current firmware answers it (after the echo), ending at the prompt. */
#define CONFIG_REPLY(version_line, inference)                                                      \
    "AT+CONFIG?\r\n"                                                                               \
    "===== Device info =====\r\n"                                                                  \
    "ID:         AC:87:A3:0A:2D:1B\r\n"                                                            \
    "Type:       ARDUINO_NANO33BLE \r\n" version_line "Data Transfer Baudrate: 921600\r\n"         \
    "===== Sensors ======\r\n"                                                                     \
    "Name: Built-in accelerometer, Max sample length: 5s, Frequencies: [62.50Hz, 100.00Hz]\r\n"    \
    "===== Snapshot ======\r\n"                                                                    \
    "Has snapshot:    1\r\n"                                                                       \
    "Resolutions:     [ 160x120, 320x240 ]\r\n" inference "===== WIFI =====\r\n"                   \
    "SSID:      \r\n"                                                                              \
    "type:      WPA2\r\n"                                                                          \
    "\r\n> "
#define INFERENCE_CAMERA                                                                           \
    "===== Inference ======\r\n"                                                                   \
    "sensor:           3\r\n"                                                                      \
    "Capture Interval: 0\r\n"                                                                      \
    "Model TYPE:       object_detection\r\n"

static const char BANNER_PROMPT[] = "b\r\nNot a valid AT command (b)\n> ";
static const char RUN_REPLY[] = "AT+RUNIMPULSE\r\nInferencing settings:\n\tInterval: 10.00 ms.\n"
                                "Starting inferencing, press 'b' to break\n";

static void test_normal_and_config(void)
{
    /* the boot banner's prompt, still buffered when the tty was opened, then the answer to b */
    static const step steps[] = {
        {ACT_NONE, 0, "b\r",
         "\r\nHello from Edge Impulse Device SDK.\r\nType AT+HELP to see a list of commands.\r\n"
         "> b\r\nNot a valid AT command (b)\n> "},
        {ACT_NONE, 0, "AT+CONFIG?\r", CONFIG_REPLY("AT Version: 1.8.0\r\n", INFERENCE_CAMERA)},
        {ACT_NONE, 0, "AT+RUNIMPULSE\r", RUN_REPLY},
        {ACT_STOP, 0, "b\r", "Inferencing stopped by user\r\n> "},
    };
    scenario("normal", SERIAL_AT_NORMAL, STEPS(steps),
             "PROMPT|CONFIG|STARTED:AT+RUNIMPULSE|STOPPED:the device stopped|", SERIAL_AT_STOPPED);

    rec r;
    int64_t now;
    serial_at *a = run(SERIAL_AT_NORMAL, steps, 3, SIZE_MAX, &r, &now);
    const serial_at_config *c = serial_at_config_get(a);
    CHECK_EQ_STR(c->id, "AC:87:A3:0A:2D:1B");
    CHECK_EQ_STR(c->type, "ARDUINO_NANO33BLE");
    CHECK_EQ_STR(c->at_version, "1.8.0");
    CHECK_EQ_STR(c->baudrate, "921600");
    CHECK_EQ_INT(c->sensor, 3);
    CHECK_EQ_STR(c->model_type, "object_detection");
    CHECK_EQ_STR(c->resolutions, "[ 160x120, 320x240 ]");
    char *json = serial_at_config_json(a);
    CHECK_EQ_STR(json, "{\"device_id\":\"AC:87:A3:0A:2D:1B\",\"device_type\":\"ARDUINO_NANO33BLE\","
                       "\"at_version\":\"1.8.0\",\"model_type\":\"object_detection\","
                       "\"resolutions\":\"[ 160x120, 320x240 ]\",\"transfer_baudrate\":921600,"
                       "\"sensor\":\"camera\"}");
    free(json);
    CHECK_EQ_STR(serial_at_state_name(serial_at_state_get(a)), "running");
    serial_at_destroy(a);
}

static void test_debug_versions(void)
{
    /* AT 1.8.0: =n; no AT Version line (1.0.0) and 1.5.1: the bare command */
    static const step v18[] = {
        {ACT_NONE, 0, "b\r", "\x1b[2K\r> "}, /* the prompt behind an erase-line sequence */
        {ACT_NONE, 0, "AT+CONFIG?\r", CONFIG_REPLY("AT Version: 1.8.0\r\n", INFERENCE_CAMERA)},
        {ACT_NONE, 0, "AT+RUNIMPULSEDEBUG=n\r", "AT+RUNIMPULSEDEBUG=n\r\nOK\r\n"},
    };
    static const step v10[] = {
        {ACT_NONE, 0, "b\r", BANNER_PROMPT},
        {ACT_NONE, 0, "AT+CONFIG?\r", CONFIG_REPLY("", "")},
        {ACT_NONE, 0, "AT+RUNIMPULSEDEBUG\r", "AT+RUNIMPULSEDEBUG\nInferencing settings:\n"},
    };
    static const step v15[] = {
        {ACT_NONE, 0, "b\r", BANNER_PROMPT},
        {ACT_NONE, 0, "AT+CONFIG?\r", CONFIG_REPLY("at version: 1.5.1\r\n", "")},
        {ACT_NONE, 0, "AT+RUNIMPULSEDEBUG\r", "AT+RUNIMPULSEDEBUG\nInferencing settings:\n"},
    };
    scenario("debug 1.8", SERIAL_AT_DEBUG, STEPS(v18),
             "PROMPT|CONFIG|STARTED:AT+RUNIMPULSEDEBUG=n|", SERIAL_AT_RUNNING);
    scenario("debug 1.0", SERIAL_AT_DEBUG, STEPS(v10), "PROMPT|CONFIG|STARTED:AT+RUNIMPULSEDEBUG|",
             SERIAL_AT_RUNNING);
    scenario("debug 1.5", SERIAL_AT_DEBUG, STEPS(v15), "PROMPT|CONFIG|STARTED:AT+RUNIMPULSEDEBUG|",
             SERIAL_AT_RUNNING);

    rec r;
    int64_t now;
    serial_at *a = run(SERIAL_AT_DEBUG, v10, 2, 3, &r, &now);
    CHECK_EQ_STR(serial_at_config_get(a)->at_version, "1.0.0");
    CHECK_EQ_INT(serial_at_config_get(a)->sensor, -1); /* no Inference section */
    char *json = serial_at_config_json(a);
    CHECK(json && !strstr(json, "sensor") && strstr(json, "\"at_version\":\"1.0.0\""));
    free(json);
    serial_at_destroy(a);
}

static void test_refusals(void)
{
    static const step cont[] = {
        {ACT_NONE, 0, "b\r", BANNER_PROMPT},
        {ACT_NONE, 0, "AT+CONFIG?\r", CONFIG_REPLY("AT Version: 1.8.0\r\n", INFERENCE_CAMERA)},
        {ACT_NONE, 0, "AT+RUNIMPULSECONT\r",
         "AT+RUNIMPULSECONT\r\nError no continuous classification available for current model\r\n"
         "> "},
        {ACT_NONE, 0, "AT+RUNIMPULSE\r", RUN_REPLY},
    };
    static const step debug[] = {
        {ACT_NONE, 0, "b\r", BANNER_PROMPT},
        {ACT_NONE, 0, "AT+CONFIG?\r", CONFIG_REPLY("AT Version: 1.8.0\r\n", "")},
        {ACT_NONE, 0, "AT+RUNIMPULSEDEBUG=n\r",
         "AT+RUNIMPULSEDEBUG=n\r\nCommand not found! (AT+RUNIMPULSEDEBUG=n)\r\n> "},
        {ACT_NONE, 0, "AT+RUNIMPULSE\r", RUN_REPLY},
    };
    static const step none[] = {
        {ACT_NONE, 0, "b\r", BANNER_PROMPT},
        {ACT_NONE, 0, "AT+CONFIG?\r", "AT+CONFIG?\r\nNo handler for command! (AT+CONFIG?)\n> "},
        {ACT_NONE, 0, "AT+RUNIMPULSE\r",
         "AT+RUNIMPULSE\r\nNot a valid AT command (AT+RUNIMPULSE)\n> "},
        {ACT_STOP, 0, "", ""}, /* nothing runs: nothing to stop */
    };
    scenario("continuous refused", SERIAL_AT_CONTINUOUS, STEPS(cont),
             "PROMPT|CONFIG|REFUSED:Error no continuous classification available for current "
             "model|STARTED:AT+RUNIMPULSE|",
             SERIAL_AT_RUNNING);
    scenario("debug refused", SERIAL_AT_DEBUG, STEPS(debug),
             "PROMPT|CONFIG|REFUSED:Command not found! (AT+RUNIMPULSEDEBUG=n)|"
             "STARTED:AT+RUNIMPULSE|",
             SERIAL_AT_RUNNING);
    scenario("all refused", SERIAL_AT_NORMAL, STEPS(none),
             "PROMPT|CONFIG|REFUSED:Not a valid AT command (AT+RUNIMPULSE)|", SERIAL_AT_STOPPED);
}

static void test_no_prompt(void)
{
    /* a device that only prints: three tries 5 s apart, then print-only; a prompt later
     * (after a reset) still gets the configuration read and the impulse started */
    static const step steps[] = {
        {ACT_NONE, 0, "b\r", "Predictions (DSP: 1 ms.):\n  a: 0.5\n"},
        {ACT_TICK, 4800, "", "x> not a prompt: mid-line\n"},
        {ACT_TICK, 100, "b\r", ""},
        {ACT_TICK, 5000, "b\r", ""},
        {ACT_TICK, 5000, "", "boot...\r\nHello from Edge Impulse\r\n> "},
        {ACT_NONE, 0, "AT+CONFIG?\r", CONFIG_REPLY("AT Version: 1.3.0\r\n", "")},
        {ACT_NONE, 0, "AT+RUNIMPULSE\r", RUN_REPLY},
    };
    scenario("no prompt", SERIAL_AT_NORMAL, STEPS(steps),
             "NO_PROMPT:no AT prompt after 3 tries of 5000 ms: reading output only|PROMPT|CONFIG|"
             "STARTED:AT+RUNIMPULSE|",
             SERIAL_AT_RUNNING);
    static const step quiet[] = {
        {ACT_NONE, 0, "b\r", ""}, {ACT_TICK, 5000, "b\r", ""}, {ACT_TICK, 5000, "b\r", ""},
        {ACT_TICK, 5000, "", ""}, {ACT_STOP, 0, "", ""},
    };
    /* a stop during the handshake or the configuration writes nothing: nothing was started */
    static const step early[] = {{ACT_NONE, 0, "b\r", ""}, {ACT_STOP, 0, "", "> "}};
    scenario("stop in handshake", SERIAL_AT_NORMAL, STEPS(early), "", SERIAL_AT_STOPPED);
    static const step config[] = {{ACT_NONE, 0, "b\r", BANNER_PROMPT},
                                  {ACT_NONE, 0, "AT+CONFIG?\r", "AT+CONFIG?\r\n"},
                                  {ACT_STOP, 0, "", ""}};
    scenario("stop in config", SERIAL_AT_NORMAL, STEPS(config), "PROMPT|", SERIAL_AT_STOPPED);
    scenario("print-only stop", SERIAL_AT_NORMAL, STEPS(quiet),
             "NO_PROMPT:no AT prompt after 3 tries of 5000 ms: reading output only|",
             SERIAL_AT_STOPPED);
}

static void test_running_and_stop(void)
{
    /* a prompt long after the start: the device left the impulse (a reset): start again; a
     * prompt right after a start: refused, no loop; a stop the device never answers ends */
    static const step left[] = {
        {ACT_NONE, 0, "b\r", BANNER_PROMPT},
        {ACT_NONE, 0, "AT+CONFIG?\r", CONFIG_REPLY("AT Version: 1.8.0\r\n", "")},
        {ACT_NONE, 0, "AT+RUNIMPULSE\r", RUN_REPLY},
        {ACT_TICK, 60000, "", "Hello from Edge Impulse\r\n> "},
        {ACT_NONE, 0, "AT+CONFIG?\r", CONFIG_REPLY("AT Version: 1.8.0\r\n", "")},
        {ACT_NONE, 0, "AT+RUNIMPULSE\r", RUN_REPLY},
        {ACT_STOP, 0, "b\r", ""},
        {ACT_TICK, 900, "", ""},
        {ACT_TICK, 100, "", ""},
    };
    scenario("left and stop timeout", SERIAL_AT_NORMAL, STEPS(left),
             "PROMPT|CONFIG|STARTED:AT+RUNIMPULSE|LEFT|CONFIG|STARTED:AT+RUNIMPULSE|"
             "STOPPED:no answer to b at stop|",
             SERIAL_AT_STOPPED);
    static const step quick[] = {
        {ACT_NONE, 0, "b\r", BANNER_PROMPT},
        {ACT_NONE, 0, "AT+CONFIG?\r", CONFIG_REPLY("AT Version: 1.8.0\r\n", "")},
        {ACT_NONE, 0, "AT+RUNIMPULSE\r", "AT+RUNIMPULSE\r\nERR: no sensor\r\n> "},
    };
    scenario("back at once", SERIAL_AT_NORMAL, STEPS(quick),
             "PROMPT|CONFIG|STARTED:AT+RUNIMPULSE|REFUSED:the device returned to its prompt after "
             "the start|",
             SERIAL_AT_REFUSED);
    /* a start with no output for the whole reply wait is taken as running (no refusal) */
    static const step slow[] = {
        {ACT_NONE, 0, "b\r", BANNER_PROMPT},
        {ACT_NONE, 0, "AT+CONFIG?\r", CONFIG_REPLY("AT Version: 1.8.0\r\n", "")},
        {ACT_NONE, 0, "AT+RUNIMPULSE\r", "AT+RUNIMPULSE\r\n"},
        {ACT_TICK, 5000, "", ""},
    };
    scenario("slow start", SERIAL_AT_NORMAL, STEPS(slow), "PROMPT|CONFIG|STARTED:AT+RUNIMPULSE|",
             SERIAL_AT_RUNNING);
}

static void test_pacing_and_deadline(void)
{
    serial_at *a = NULL;
    er_err err;
    serial_at_opts o = {.mode = SERIAL_AT_NORMAL};
    const uint8_t *d = NULL;
    CHECK_EQ_INT(serial_at_create(&o, &a, &err), ER_OK);
    if (!a) return;
    CHECK_EQ_INT(serial_at_state_get(a), SERIAL_AT_IDLE);
    CHECK(serial_at_deadline(a) == INT64_MAX);
    serial_at_start(a, 0);
    CHECK_EQ_INT(serial_at_deadline(a), 0); /* b\r is due now */
    CHECK_EQ_INT(serial_at_output(a, 0, &d), 2);
    serial_at_wrote(a, 2, 0);
    CHECK_EQ_INT(serial_at_deadline(a), 5000); /* the handshake's wait */
    /* a stale prompt followed by more output is not taken; the last one, once quiet, is */
    serial_at_feed(a, (const uint8_t *)"> b\r\n", 5, 50);
    serial_at_tick(a, 500);
    CHECK_EQ_INT(serial_at_state_get(a), SERIAL_AT_HANDSHAKE);
    serial_at_feed(a, (const uint8_t *)"> ", 2, 1000);
    CHECK_EQ_INT(serial_at_deadline(a), 1000 + SERIAL_AT_PROMPT_QUIET_MS);
    serial_at_tick(a, 1099);
    CHECK_EQ_INT(serial_at_state_get(a), SERIAL_AT_HANDSHAKE);
    serial_at_tick(a, 1100);
    CHECK_EQ_INT(serial_at_state_get(a), SERIAL_AT_CONFIG);
    /* AT+CONFIG?\r (11 bytes): 5 + 5 + 1, each piece 20 ms after the one before */
    CHECK_EQ_INT(serial_at_output(a, 1100, &d), 5);
    CHECK(memcmp(d, "AT+CO", 5) == 0);
    serial_at_wrote(a, 3, 1100); /* a short write: the rest follows */
    CHECK_EQ_INT(serial_at_deadline(a), 1120);
    CHECK_EQ_INT(serial_at_output(a, 1119, &d), 0);
    CHECK_EQ_INT(serial_at_output(a, 1120, &d), 5);
    CHECK(memcmp(d, "CONFI", 5) == 0);
    serial_at_destroy(a);
    serial_at_destroy(NULL);
}

int main(void)
{
    test_normal_and_config();
    test_debug_versions();
    test_refusals();
    test_no_prompt();
    test_running_and_stop();
    test_pacing_and_deadline();
    return check_summary();
}

/* fuzz_serial_at.c - the AT firmware state machine (sources/serial_at.c) driven by arbitrary
 * device bytes, clock steps, stops and restarts: must never crash, leak or overrun; output
 * comes in pieces of at most SERIAL_AT_PIECE bytes, never before its time; the configuration
 * it keeps is printable text and its JSON parses; the state is always a known one.
 *
 * Input: byte 0 % 3 = the mode; then commands, each a control byte c and its operands:
 *   c % 5 == 0: feed the next (c / 5) + 1 bytes (fewer at the end) as device output;
 *   c % 5 == 1: advance the clock by (c / 5) * 100 ms and tick;
 *   c % 5 == 2: write everything due (advancing the clock by the pacing);
 *   c % 5 == 3: stop;  c % 5 == 4: start again (a reopened device). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sources/serial_at.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_event(void *arg, serial_at_event ev, const char *text)
{
    size_t *n = arg;
    if (!text || ev < SERIAL_AT_EV_PROMPT || ev > SERIAL_AT_EV_STOPPED) abort();
    (*n)++;
}

static void check_text(const char *s)
{
    size_t n = strnlen(s, SERIAL_AT_VALUE_MAX);
    if (n == SERIAL_AT_VALUE_MAX) abort(); /* not terminated within its field */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) abort();
}

static void check(const serial_at *a)
{
    const serial_at_config *c = serial_at_config_get(a);
    serial_at_state st = serial_at_state_get(a);
    if (st < SERIAL_AT_IDLE || st > SERIAL_AT_STOPPED || !serial_at_state_name(st)) abort();
    check_text(c->id);
    check_text(c->type);
    check_text(c->at_version);
    check_text(c->baudrate);
    check_text(c->model_type);
    check_text(c->resolutions);
    if (c->sensor < -1 || c->sensor > 255) abort();
}

static void drain(serial_at *a, int64_t *now)
{
    for (int i = 0; i < 64; i++) {
        const uint8_t *d = NULL;
        size_t n = serial_at_output(a, *now, &d);
        if (n == 0) return;
        if (n > SERIAL_AT_PIECE || !d) abort();
        serial_at_wrote(a, n, *now);
        if (serial_at_output(a, *now + SERIAL_AT_PIECE_GAP_MS - 1, &d) != 0) abort();
        *now += SERIAL_AT_PIECE_GAP_MS;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    serial_at *a = NULL;
    er_err err;
    size_t events = 0, i = 1;
    int64_t now = 0;
    if (size == 0) return 0;
    serial_at_opts o = {.mode = (serial_at_mode)(data[0] % 3), .event = on_event, .arg = &events};
    if (serial_at_create(&o, &a, &err) != ER_OK) abort();
    serial_at_start(a, now);
    while (i < size) {
        uint8_t c = data[i++];
        switch (c % 5) {
        case 0: {
            size_t k = (size_t)(c / 5) + 1;
            if (k > size - i) k = size - i;
            serial_at_feed(a, data + i, k, now);
            i += k;
            break;
        }
        case 1:
            now += (int64_t)(c / 5) * 100;
            serial_at_tick(a, now);
            break;
        case 2:
            drain(a, &now);
            break;
        case 3:
            serial_at_stop(a, now);
            break;
        default:
            serial_at_start(a, now);
            break;
        }
        check(a);
    }
    char *json = serial_at_config_json(a);
    cJSON *parsed = json ? cJSON_Parse(json) : NULL;
    if (json && !cJSON_IsObject(parsed)) abort();
    cJSON_Delete(parsed);
    free(json);
    serial_at_destroy(a);
    return 0;
}

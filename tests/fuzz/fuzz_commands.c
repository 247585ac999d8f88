/* fuzz_commands.c - commands_parse (forward/commands.c), the Edge Impulse command received from
 * IoT Core on .../command/input, on arbitrary bytes: the input is one MQTT payload (not
 * NUL-terminated). It must never crash, leak or read past the payload; a parsed command has a
 * known verb and a terminated text, and its number is finite; a refused one says why. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "forward/commands.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes, so reading past the payload is a sanitizer report */
    char *payload = malloc(size ? size : 1);
    if (!payload) return 0;
    memcpy(payload, data, size);
    commands_cmd c;
    er_err err = {{0}};
    er_rc rc = commands_parse(payload, size, &c, &err);
    if (rc == ER_OK) {
        if ((unsigned)c.verb >= COMMANDS_VERB_COUNT || !commands_verb_name(c.verb) ||
            memchr(c.text, '\0', sizeof c.text) == NULL || (c.has_number && !isfinite(c.number)))
            abort();
    } else if (err.msg[0] == '\0') {
        abort(); /* a refusal must say why: it is the error reply's text */
    }
    free(payload);
    return 0;
}

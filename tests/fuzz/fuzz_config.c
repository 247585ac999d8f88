/* fuzz_config.c - fuzz harness of the configuration loader: any bytes through
 * config_load_json, then config_free; a failure must leave the config freed. */
#include <stdint.h>
#include <stdlib.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    config c;
    er_err err;
    er_rc rc = config_load_json(&c, (const char *)data, size, &err);
    /* a failed load must not leave anything owned behind */
    if (rc != ER_OK && (c.bind || c.db_path || c.sources_json || c.tokens || c.ignored_keys))
        abort();
    config_free(&c);
    return 0;
}

/* fuzz_greengrass.c - fuzz harness of greengrass-setup's pure part (greengrass_scan): the input,
 * split at its first NUL byte, is two YAML texts scanned in turn into one greengrass_found (as
 * lite's config.yaml and a config.d file are); every value stored must be a non-empty string
 * of at most 4096 bytes with its origin, whatever the texts hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "greengrass/greengrass.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    greengrass_found f;
    er_err err;
    memset(&f, 0, sizeof f);
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t first = nul ? (size_t)(nul - text) : size;
    greengrass_scan(&f, text, first, "config.yaml", &err);
    if (nul) greengrass_scan(&f, nul + 1, size - first - 1, "config.d/x.yaml", &err);
    for (int k = 0; k < GREENGRASS_KEY_COUNT; k++) {
        if (!f.value[k]) continue;
        size_t n = strlen(f.value[k]);
        if (n == 0 || n > 4096 || !f.origin[k] || !greengrass_key_name((greengrass_key)k)[0])
            abort();
    }
    greengrass_found_free(&f);
    return 0;
}

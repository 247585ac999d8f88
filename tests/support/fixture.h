/* fixture.h - reading a file of tests/fixtures/ from a C test. The directory is $EI_FIXTURES
 * (tests/CMakeLists.txt sets it for every test), else EI_FIXTURES_DIR, which tests/CMakeLists.txt
 * compiles in as the source tree's tests/fixtures, so a test run by hand finds the same files.
 * Nothing outside the repository is ever read.
 *
 * fixture_read returns a malloc'ed, NUL-terminated copy (the caller frees it) and its length,
 * or NULL after printing the path and counting a failed check. */
#ifndef EI_TEST_FIXTURE_H
#define EI_TEST_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "check.h"

#ifndef EI_FIXTURES_DIR
#error "EI_FIXTURES_DIR must name the tests/fixtures directory (tests/CMakeLists.txt sets it)"
#endif

static inline char *fixture_read(const char *subdir, const char *name, size_t *len)
{
    const char *dir = getenv("EI_FIXTURES");
    char path[1024];
    char *buf = NULL;
    long n = -1;
    FILE *f;
    snprintf(path, sizeof path, "%s/%s/%s", dir && *dir ? dir : EI_FIXTURES_DIR, subdir, name);
    f = fopen(path, "rb");
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        if (len) *len = (size_t)n;
    } else {
        fprintf(stderr, "cannot read fixture %s\n", path);
        check_failed++;
        free(buf);
        buf = NULL;
    }
    if (f) fclose(f);
    return buf;
}

#endif

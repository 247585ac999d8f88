/* ingest_cpu.c - the HTTP threads' per-request work of a JSON ingest without the network or the
 * store: ingest_parse of the benchmark's result.json (pre-scan, parse, normalize) and the 201
 * answer's text (view_render_tail, view_render), all freed again, N times. Run under callgrind
 * it gives an instruction count per request that the machine's load does not move
 * (tests/bench/README.md, "HTTP threads"). Build and run (after a Release build in build-rel):
 *
 *   cc -O2 -I server tests/bench/ingest_cpu.c build-rel/libeirelay_core.a \
 *      $(pkg-config --cflags --libs libmicrohttpd sqlite3 libcjson vips) -lpthread -lm \
 *      -o /tmp/ingest_cpu
 *   valgrind --tool=callgrind /tmp/ingest_cpu tests/bench/result.json 2000
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_alloc.h"
#include "core/json_print.h"
#include "core/util.h"
#include "ingest/ingest.h"
#include "model/view.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: ingest_cpu BODY.json N\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    static char body[1 << 16];
    size_t len = fread(body, 1, sizeof body, f);
    fclose(f);
    while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r'))
        len--;
    int n = atoi(argv[2]);
    json_alloc_install();
    size_t out_bytes = 0;
    for (int i = 0; i < n; i++) {
        normalize_opts o = {.device = "bench", .source = "http", .now_ms = util_now_ms()};
        inference *inf = NULL;
        er_err err = {{0}};
        if (ingest_parse("application/json", (const uint8_t *)body, len, &o, &inf, &err)) {
            fprintf(stderr, "ingest_cpu: %s\n", err.msg);
            return 1;
        }
        char *tail = view_render_tail(inf); /* as http_api_ingest, then ..._finish */
        char *text = tail ? view_render(inf->guid, 1000 + i, o.now_ms, tail) : NULL;
        free(tail);
        if (!text) return 1;
        out_bytes += strlen(text);
        if (i == 0) printf("%s\n", text);
        free(text);
        inference_destroy(inf);
    }
    printf("requests %d, answer bytes %zu\n", n, out_bytes);
    return 0;
}

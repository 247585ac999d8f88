/* test_http_parse.c - the pure helpers of the HTTP server: routing, the cursor codec, stats
 * buckets, query names, static path safety and content types. */
#include <string.h>

#include "check.h"
#include "http/http_parse.h"

#define GUID "0b3f4e1c-8a47-4b1a-9f6a-2a1f1f6a9d11"

static void test_routes(void)
{
    http_route r;
    http_route_match("GET", "/api/v1/inferences", &r);
    CHECK_EQ_INT(r.id, HTTP_ROUTE_INFERENCES);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.need, AUTH_READ);

    http_route_match("POST", "/api/v1/inferences", &r);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.need, AUTH_INGEST);

    http_route_match("PUT", "/api/v1/inferences", &r);
    CHECK_EQ_INT(r.status, 405);
    CHECK_EQ_STR(r.allow, "GET, HEAD, POST");

    http_route_match("GET", "/api/v1/inferences/" GUID, &r);
    CHECK_EQ_INT(r.id, HTTP_ROUTE_INFERENCE);
    CHECK(r.id_ok);
    CHECK_EQ_STR(r.guid, GUID);

    http_route_match("GET", "/api/v1/forwarder", &r);
    CHECK_EQ_INT(r.id, HTTP_ROUTE_FORWARDER);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.need, AUTH_READ);
    http_route_match("POST", "/api/v1/forwarder", &r);
    CHECK_EQ_INT(r.status, 405);
    CHECK_EQ_STR(r.allow, "GET, HEAD");

    /* ids are stored lower-case: an upper-case spelling names the same inference */
    http_route_match("GET", "/api/v1/inferences/ECC9EB01-5D4E-4B5A-9D7E-0C1F2A3B4C5D/image", &r);
    CHECK(r.id_ok);
    CHECK_EQ_STR(r.guid, "ecc9eb01-5d4e-4b5a-9d7e-0c1f2a3b4c5d");

    http_route_match("DELETE", "/api/v1/inferences/" GUID, &r);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.need, AUTH_ADMIN);

    http_route_match("POST", "/api/v1/inferences/" GUID, &r);
    CHECK_EQ_INT(r.status, 405);
    CHECK_EQ_STR(r.allow, "GET, HEAD, DELETE");

    http_route_match("GET", "/api/v1/inferences/" GUID "/image", &r);
    CHECK_EQ_INT(r.id, HTTP_ROUTE_IMAGE);
    CHECK(r.id_ok);
    http_route_match("HEAD", "/api/v1/inferences/" GUID "/thumbnail", &r);
    CHECK_EQ_INT(r.id, HTTP_ROUTE_THUMBNAIL);
    CHECK_EQ_INT(r.status, 0);
    http_route_match("DELETE", "/api/v1/inferences/" GUID "/image", &r);
    CHECK_EQ_INT(r.status, 405);

    /* a known shape with a bad id: matched, but id_ok false (400 after auth) */
    http_route_match("GET", "/api/v1/inferences/not-a-uuid", &r);
    CHECK_EQ_INT(r.id, HTTP_ROUTE_INFERENCE);
    CHECK(!r.id_ok);
    CHECK_EQ_STR(r.guid, "not-a-uuid");
    http_route_match("GET", "/api/v1/inferences/" GUID "0", &r);
    CHECK(!r.id_ok);
    http_route_match("GET", "/api/v1/inferences/'%20OR%201=1--/image", &r);
    CHECK_EQ_INT(r.id, HTTP_ROUTE_IMAGE);
    CHECK(!r.id_ok);
    /* a very long segment is truncated, never overflows */
    char long_path[600] = "/api/v1/inferences/";
    memset(long_path + strlen(long_path), 'a', 500);
    http_route_match("GET", long_path, &r);
    CHECK(!r.id_ok);
    CHECK_EQ_INT(strlen(r.guid), UTIL_UUID_LEN);

    /* unknown API paths are 404, also near misses */
    const char *missing[] = {"/api/v1/inferences/",
                             "/api/v1/inferences/" GUID "/",
                             "/api/v1/inferences//x",
                             "/api/v1/inferences/" GUID "/other",
                             "/api/v1/nothing",
                             "/api/v2/inferences",
                             "/api",
                             "/api/v1/health/"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        http_route_match("GET", missing[i], &r);
        CHECK_EQ_INT(r.status, 404);
        CHECK_EQ_INT(r.id, HTTP_ROUTE_NONE);
    }

    http_route_match("GET", "/api/v1/health", &r);
    CHECK_EQ_INT(r.id, HTTP_ROUTE_HEALTH);
    CHECK_EQ_INT(r.need, AUTH_NONE);
    http_route_match("POST", "/api/v1/health", &r);
    CHECK_EQ_INT(r.status, 405);
    http_route_match("GET", "/api/v1/stats", &r);
    CHECK_EQ_INT(r.id, HTTP_ROUTE_STATS);
    CHECK_EQ_INT(r.need, AUTH_READ);
    http_route_match("GET", "/metrics", &r);
    CHECK_EQ_INT(r.id, HTTP_ROUTE_METRICS);
    CHECK_EQ_INT(r.need, AUTH_READ);

    /* the dashboard: no token; only "/" answers 405 to other methods */
    http_route_match("GET", "/", &r);
    CHECK_EQ_INT(r.id, HTTP_ROUTE_STATIC);
    CHECK_EQ_INT(r.need, AUTH_NONE);
    http_route_match("GET", "/js/app.js", &r);
    CHECK_EQ_INT(r.id, HTTP_ROUTE_STATIC);
    http_route_match("POST", "/", &r);
    CHECK_EQ_INT(r.status, 405);
    http_route_match("POST", "/js/app.js", &r);
    CHECK_EQ_INT(r.status, 404);
    http_route_match("GET", "relative", &r);
    CHECK_EQ_INT(r.status, 404);
    http_route_match("GET", NULL, &r);
    CHECK_EQ_INT(r.status, 404);

    CHECK_EQ_INT(http_method_parse("get"), HTTP_M_OTHER); /* methods are case-sensitive */
    CHECK_EQ_INT(http_method_parse("DELETE"), HTTP_M_DELETE);
}

static void test_cursor(void)
{
    char buf[HTTP_CURSOR_MAX];
    int64_t seq = 0;
    const int64_t values[] = {1, 42, 1000000, INT64_MAX};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        http_cursor_encode(values[i], buf);
        CHECK(http_cursor_decode(buf, &seq) == ER_OK);
        CHECK(seq == values[i]);
    }
    http_cursor_encode(12, buf);
    CHECK_EQ_STR(buf, "c12");
    const char *bad[] = {"",
                         "c",
                         "12",
                         "c0",
                         "c012",
                         "c-1",
                         "c+1",
                         "c1 ",
                         " c1",
                         "C1",
                         "c1x",
                         "c1.5",
                         "d12",
                         "c9223372036854775808",
                         "c99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        seq = -7;
        CHECK(http_cursor_decode(bad[i], &seq) == ER_INVALID);
        CHECK(seq == -7); /* untouched on failure */
    }
    CHECK(http_cursor_decode(NULL, &seq) == ER_INVALID);
}

static void test_bucket(void)
{
    int64_t ms = 0;
    CHECK(http_parse_bucket("1h", &ms) == ER_OK);
    CHECK(ms == 3600000);
    CHECK(http_parse_bucket("1m", &ms) == ER_OK);
    CHECK(ms == 60000);
    CHECK(http_parse_bucket("1d", &ms) == ER_OK);
    CHECK(ms == 86400000);
    CHECK(http_parse_bucket("30s", &ms) == ER_OK);
    CHECK(ms == 30000);
    CHECK(http_parse_bucket("15m", &ms) == ER_OK);
    CHECK(ms == 900000);
    CHECK(http_parse_bucket("60000", &ms) == ER_OK);
    CHECK(ms == 60000);
    const char *bad[] = {"",
                         "0",
                         "0h",
                         "h",
                         "1x",
                         "1hh",
                         "-1h",
                         "1.5h",
                         " 1h",
                         "1h ",
                         "1H",
                         "99999999999999999d",
                         "9223372036854775808"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms = -3;
        CHECK(http_parse_bucket(bad[i], &ms) == ER_INVALID);
        CHECK(ms == -3);
    }
}

static void test_query_names(void)
{
    static const char *const allowed[] = {"label", "limit", NULL};
    static const char *const none[] = {NULL};
    CHECK(http_query_name_ok("label", allowed));
    CHECK(http_query_name_ok("limit", allowed));
    CHECK(!http_query_name_ok("Label", allowed));
    CHECK(!http_query_name_ok("lim", allowed));
    CHECK(!http_query_name_ok("", allowed));
    CHECK(!http_query_name_ok(NULL, allowed));
    CHECK(!http_query_name_ok("label", none));
}

static void test_static_paths(void)
{
    const char *good[] = {"/",     "/index.html", "/js/app.js", "/css/site.min.css",
                          "/a..b", "/..a",        "/a.",        "/.well-known-ish"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!http_static_path_safe(good[i])) fprintf(stderr, "should be safe: %s\n", good[i]);
        CHECK(http_static_path_safe(good[i]));
    }
    const char *bad[] = {"",
                         "index.html",
                         "..",
                         "/..",
                         "/../etc/passwd",
                         "/a/../../etc/passwd",
                         "/a/..",
                         "/a/./b",
                         "/.",
                         "/./index.html",
                         "//etc/passwd",
                         "/a//b",
                         "/a/",
                         "/%2e%2e/etc/passwd",
                         "/%2E%2E/x",
                         "/..%2fetc",
                         "/a\\..\\b",
                         "/..\\x",
                         "/a\nb",
                         "/a\rb",
                         "/\x7f",
                         "/a\tb",
                         NULL};
    for (size_t i = 0; bad[i]; i++) {
        if (http_static_path_safe(bad[i])) fprintf(stderr, "should be refused: %s\n", bad[i]);
        CHECK(!http_static_path_safe(bad[i]));
    }
    CHECK(!http_static_path_safe(NULL));
    char big[1100] = "/";
    memset(big + 1, 'a', 1050);
    CHECK(!http_static_path_safe(big));
    big[1024] = '\0'; /* exactly 1024 bytes: allowed */
    CHECK(http_static_path_safe(big));
}

static void test_mime(void)
{
    CHECK_EQ_STR(http_static_mime("/index.html"), "text/html; charset=utf-8");
    CHECK_EQ_STR(http_static_mime("/INDEX.HTML"), "text/html; charset=utf-8");
    CHECK_EQ_STR(http_static_mime("/js/app.js"), "text/javascript; charset=utf-8");
    CHECK_EQ_STR(http_static_mime("/a.css"), "text/css; charset=utf-8");
    CHECK_EQ_STR(http_static_mime("/i.svg"), "image/svg+xml");
    CHECK_EQ_STR(http_static_mime("/i.png"), "image/png");
    CHECK_EQ_STR(http_static_mime("/i.jpg"), "image/jpeg");
    CHECK_EQ_STR(http_static_mime("/favicon.ico"), "image/x-icon");
    CHECK_EQ_STR(http_static_mime("/m.json"), "application/json");
    CHECK_EQ_STR(http_static_mime("/f.woff2"), "font/woff2");
    CHECK_EQ_STR(http_static_mime("/noext"), "application/octet-stream");
    CHECK_EQ_STR(http_static_mime("/dir.js/noext"), "application/octet-stream");
    CHECK_EQ_STR(http_static_cache_control("/index.html"), "no-cache");
    CHECK_EQ_STR(http_static_cache_control("/app.js"), "no-cache");
    CHECK_EQ_STR(http_static_cache_control("/app.css"), "no-cache");
    CHECK_EQ_STR(http_static_cache_control("/icon.svg"), "max-age=3600");
}

static void unescape_case(const char *in, const char *want)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", in);
    size_t n = http_unescape(buf);
    CHECK_EQ_INT(n, strlen(want));
    CHECK_EQ_STR(buf, want);
}

static void test_unescape(void)
{
    unescape_case("/a%20b", "/a b");
    unescape_case("/%2e%2e/x", "/../x");
    unescape_case("/%2E%2e/x", "/../x");
    unescape_case("%41%42c", "ABc");
    unescape_case("plain", "plain");
    unescape_case("", "");
    /* a NUL never comes out: "%00" stays, so "/%00/../x" cannot shrink to "/" */
    unescape_case("/%00/../secret", "/%00/../secret");
    unescape_case("a%00b", "a%00b");
    /* malformed escapes stay as they are */
    unescape_case("%", "%");
    unescape_case("%4", "%4");
    unescape_case("%zz", "%zz");
    unescape_case("100%", "100%");
    unescape_case("%%41", "%A");
    /* the result keeps failing the static path check when it must */
    char p[] = "/%00/../secret.txt";
    http_unescape(p);
    CHECK(!http_static_path_safe(p));
}

/* The framing of a head: each row a list of header lines and whether it is refused. */
static void test_framing(void)
{
    static const struct {
        const char *lines[4][2];
        bool refused;
    } cases[] = {
        {{{"Host", "x"}, {"Content-Length", "5"}}, false},
        {{{"Transfer-Encoding", "chunked"}}, false},
        {{{"transfer-encoding", "Chunked"}}, false},
        {{{"Content-Length", "5"}, {"Content-Length", "5"}}, true},
        {{{"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}}, true},
        {{{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}, true},
        {{{"Transfer-Encoding", "chunked, identity"}}, true},
        {{{"Transfer-Encoding", "identity"}}, true},
        {{{"Transfer-Encoding", "gzip"}}, true},
        {{{"Transfer-Encoding ", "chunked"}}, true},    /* space before the colon */
        {{{"Content-Typefolded", "text/plain"}}, true}, /* libmicrohttpd's obs-fold */
        {{{"Authorizationx", "Bearer"}}, true},
        {{{"X-A b", "c"}}, true},
        {{{"", "c"}}, true},
        {{{"Content-Type", "a"}, {"content-type", "b"}}, true},
        {{{"Authorization", "a"}, {"Authorization", "b"}}, true},
        {{{"Host", "a"}, {"Host", "b"}}, true},
        {{{"Hostx", "a"}}, true},
        {{{"X-Content-Type-Options", "nosniff"}, {"Content-Disposition", "x"}}, false},
        {{{"Content-Type-Options", "1"}}, true}, /* a folded line or not: refused */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_framing f = {0};
        char buf[160];
        for (size_t k = 0; k < 4 && cases[i].lines[k][0]; k++)
            http_framing_add(&f, cases[i].lines[k][0], cases[i].lines[k][1]);
        const char *why = http_framing_problem(&f, buf, sizeof buf);
        if ((why != NULL) != cases[i].refused) fprintf(stderr, "framing case %zu\n", i);
        CHECK((why != NULL) == cases[i].refused);
    }
}

static void test_decimal(void)
{
    const char *ints[] = {"0", "5", "-1", "123456789012345678901234"};
    const char *fractions[] = {"0.5", "-0", "5e-1", "1E+3", "1.25e2"};
    const char *bad[] = {"",   "-",  "+5",  " 5",  "5 ",  "0x10", "1.",
                         ".5", "1e", "nan", "inf", "--1", "1e+",  "5a"};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        CHECK(http_decimal_ok(ints[i], false) && http_decimal_ok(ints[i], true));
    for (size_t i = 0; i < sizeof fractions / sizeof fractions[0]; i++)
        CHECK(!http_decimal_ok(fractions[i], false) == (strcmp(fractions[i], "-0") != 0) &&
              http_decimal_ok(fractions[i], true));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!http_decimal_ok(bad[i], true));
    CHECK(!http_decimal_ok(NULL, true));
    int64_t ms = 0;
    CHECK(http_parse_time("-5", &ms) == ER_OK && ms == -5);
    CHECK(http_parse_time("1970-01-01T00:00:01Z", &ms) == ER_OK && ms == 1000);
    CHECK(http_parse_time(" 5", &ms) != ER_OK);
    CHECK(http_parse_time("+5", &ms) != ER_OK);
    CHECK(http_parse_time("0x5", &ms) != ER_OK);
    CHECK(http_parse_time("99999999999999999999", &ms) != ER_OK);
}

int main(void)
{
    test_framing();
    test_decimal();
    test_unescape();
    test_routes();
    test_cursor();
    test_bucket();
    test_query_names();
    test_static_paths();
    test_mime();
    return check_summary();
}

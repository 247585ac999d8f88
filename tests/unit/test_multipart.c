/* test_multipart.c - boundary extraction and part iteration of the multipart parser, over
 * well-formed, LF-only, truncated and garbage bodies. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ingest/multipart.h"

static int part_is(const multipart_part *p, const char *name, const char *type, const char *data)
{
    return p->name && p->name_len == strlen(name) && memcmp(p->name, name, p->name_len) == 0 &&
           (type ? p->content_type && p->content_type_len == strlen(type) &&
                       memcmp(p->content_type, type, p->content_type_len) == 0
                 : p->content_type == NULL) &&
           p->len == strlen(data) && memcmp(p->data, data, p->len) == 0;
}

static void test_boundary(void)
{
    char b[MULTIPART_BOUNDARY_MAX + 1];
    CHECK_EQ_INT(multipart_boundary("multipart/form-data; boundary=abc123", b), ER_OK);
    CHECK_EQ_STR(b, "abc123");
    CHECK_EQ_INT(multipart_boundary("Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b;c\"", b),
                 ER_OK);
    CHECK_EQ_STR(b, "a b;c");
    CHECK_EQ_INT(multipart_boundary("multipart/form-data ; boundary = \"q\\\"x\" ; x=y", b), ER_OK);
    CHECK_EQ_STR(b, "q\"x");
    CHECK_EQ_INT(multipart_boundary("multipart/form-data", b), ER_INVALID);
    CHECK_EQ_INT(multipart_boundary("multipart/form-data; boundary=", b), ER_INVALID);
    CHECK_EQ_INT(multipart_boundary("multipart/form-data; boundary=\"unterminated", b), ER_INVALID);
    CHECK_EQ_INT(multipart_boundary("multipart/mixed; boundary=x", b), ER_UNSUPPORTED);
    CHECK_EQ_INT(multipart_boundary("multipart/form-dataX; boundary=x", b), ER_UNSUPPORTED);
    CHECK_EQ_INT(multipart_boundary("application/json", b), ER_UNSUPPORTED);
    CHECK_EQ_INT(multipart_boundary(NULL, b), ER_UNSUPPORTED);
    char ct[200];
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%070d", 7);
    CHECK_EQ_INT(multipart_boundary(ct, b), ER_OK);
    CHECK_EQ_INT(strlen(b), 70);
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%071d", 7);
    CHECK_EQ_INT(multipart_boundary(ct, b), ER_INVALID);
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=\"%071d\"", 7);
    CHECK_EQ_INT(multipart_boundary(ct, b), ER_INVALID);
}

/* Runs the parser over a heap copy sized exactly to len, so ASan sees any over-read. */
static int parse_all(const char *body, size_t len, const char *boundary, multipart_part *parts,
                     int max, er_rc *last)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, body, len);
    size_t pos = 0;
    int n = 0;
    er_rc rc;
    while ((rc = multipart_next(copy, len, boundary, &pos, &parts[n < max ? n : max - 1])) == ER_OK)
        n++;
    *last = rc;
    /* Rebase the returned pointers onto the caller's literal before freeing the copy. */
    for (int i = 0; i < n && i < max; i++) {
        multipart_part *p = &parts[i];
        if (p->name) p->name = body + (p->name - (const char *)copy);
        if (p->filename) p->filename = body + (p->filename - (const char *)copy);
        if (p->content_type) p->content_type = body + (p->content_type - (const char *)copy);
        p->data = (const uint8_t *)body + (p->data - copy);
    }
    free(copy);
    return n;
}

static void test_parts(void)
{
    static const char body[] =
        "preamble to ignore\r\n"
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"json\"\r\n"
        "Content-Type: application/json\r\n"
        "\r\n"
        "{\"c\":{\"a\":1}}\r\n"
        "--XyZ  \r\n"
        "content-disposition: form-data; name=image; filename=\"cam 1.jpg\"\r\n"
        "CONTENT-TYPE:   image/jpeg  \r\n"
        "X-Other: whatever\r\n"
        "\r\n"
        "\xff\xd8\xff\r\n--XyZ not a delimiter mid-line \r\n\x00\x01"
        "\r\n--XyZ\r\n"
        "Content-Disposition: form-data; name=\"empty\"\r\n"
        "\r\n"
        "\r\n--XyZ--\r\n"
        "epilogue --XyZ\r\n";
    multipart_part p[8];
    er_rc last;
    int n = parse_all(body, sizeof body - 1, "XyZ", p, 8, &last);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(last, ER_NOTFOUND);
    if (n < 3) return;
    CHECK(part_is(&p[0], "json", "application/json", "{\"c\":{\"a\":1}}"));
    CHECK(p[0].filename == NULL);
    CHECK(p[1].name_len == 5 && memcmp(p[1].name, "image", 5) == 0);
    CHECK(p[1].filename_len == 9 && memcmp(p[1].filename, "cam 1.jpg", 9) == 0);
    CHECK(p[1].content_type_len == 10 && memcmp(p[1].content_type, "image/jpeg", 10) == 0);
    static const char img[] = "\xff\xd8\xff\r\n--XyZ not a delimiter mid-line \r\n\x00\x01";
    CHECK_EQ_INT(p[1].len, sizeof img - 1);
    CHECK(memcmp(p[1].data, img, sizeof img - 1) == 0);
    CHECK(part_is(&p[2], "empty", NULL, ""));
}

static void test_lf_only_and_no_preamble(void)
{
    static const char body[] = "--b\n"
                               "Content-Disposition: form-data; name=a\n"
                               "\n"
                               "one\n"
                               "--b\n"
                               "Content-Disposition: form-data; name=bb\n"
                               "\n"
                               "\n"
                               "--b--";
    multipart_part p[4];
    er_rc last;
    int n = parse_all(body, sizeof body - 1, "b", p, 4, &last);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(last, ER_NOTFOUND);
    if (n == 2) {
        CHECK(part_is(&p[0], "a", NULL, "one"));
        CHECK(part_is(&p[1], "bb", NULL, ""));
    }
    /* A part with no headers at all. */
    static const char bare[] = "--b\r\n\r\nraw\r\n--b--\r\n";
    n = parse_all(bare, sizeof bare - 1, "b", p, 4, &last);
    CHECK_EQ_INT(n, 1);
    CHECK(n == 1 && p[0].name == NULL && p[0].len == 3 && memcmp(p[0].data, "raw", 3) == 0);
    /* Lines that only start with the boundary are preamble, not delimiters. */
    n = parse_all("--bX\r\n\r\nx\r\n--b junk\r\n--b--", 26, "b", p, 4, &last);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(last, ER_NOTFOUND);
    /* Only a close delimiter: no parts. */
    n = parse_all("--b--\r\n", 7, "b", p, 4, &last);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(last, ER_NOTFOUND);
}

static void test_malformed(void)
{
    static const struct {
        const char *body;
        int parts; /* parts returned before the error */
    } cases[] = {
        {"", 0},
        {"no delimiter at all", 0},
        {"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue", 0}, /* no close */
        {"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue\r\n--b", 0},
        {"--b\r\nContent-Disposition: form-data; name=a\r\n", 0}, /* headers cut */
        {"--b\r\nno colon here\r\n\r\nx\r\n--b--", 0},            /* bad header */
        {"--b", 0},                                               /* cut after delimiter */
        {"--b\r\n\r\nx\r\n--b\r\nContent-Disposition: x\r\n\r\nno end", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        multipart_part p[4];
        er_rc last;
        int n = parse_all(cases[i].body, strlen(cases[i].body), "b", p, 4, &last);
        if (n != cases[i].parts || last != ER_INVALID)
            fprintf(stderr, "  case %zu: %d parts, rc %d\n", i, n, (int)last);
        CHECK_EQ_INT(n, cases[i].parts);
        CHECK_EQ_INT(last, ER_INVALID);
    }
    /* Header block over the bound. */
    size_t big = 10000;
    char *body = malloc(big + 64);
    size_t n = (size_t)sprintf(body, "--b\r\nX-Long: ");
    memset(body + n, 'a', big);
    n += big;
    n += (size_t)sprintf(body + n, "\r\n\r\nx\r\n--b--");
    multipart_part p[2];
    er_rc last;
    CHECK_EQ_INT(parse_all(body, n, "b", p, 2, &last), 0);
    CHECK_EQ_INT(last, ER_INVALID);
    free(body);
    /* Bad arguments. */
    size_t pos = 0;
    CHECK_EQ_INT(multipart_next((const uint8_t *)"--b--", 5, "", &pos, p), ER_INVALID);
    pos = 99;
    CHECK_EQ_INT(multipart_next((const uint8_t *)"--b--", 5, "b", &pos, p), ER_INVALID);
}

int main(void)
{
    test_boundary();
    test_parts();
    test_lf_only_and_no_preamble();
    test_malformed();
    return check_summary();
}

/* test_runner_ws_url.c - the runner-ws source's URL parser: what a user may write in "url" and
 * what is refused with a message. */
#include <string.h>

#include "check.h"
#include "sources/runner_ws.h"

static void good(const char *url, const char *host, int port, const char *path)
{
    char h[64], p[64];
    int port_out = -1;
    er_err err = {{0}};
    CHECK_EQ_INT(runner_ws_parse_url(url, h, sizeof h, &port_out, p, sizeof p, &err), ER_OK);
    CHECK_EQ_STR(h, host);
    CHECK_EQ_INT(port_out, port);
    CHECK_EQ_STR(p, path);
}

static void bad(const char *url, const char *why)
{
    char h[64], p[64];
    int port = -1;
    er_err err = {{0}};
    CHECK_EQ_INT(runner_ws_parse_url(url, h, sizeof h, &port, p, sizeof p, &err), ER_CONFIG);
    CHECK(strstr(err.msg, why) != NULL);
}

int main(void)
{
    good("ws://127.0.0.1:4912/", "127.0.0.1", 4912, "/");
    good("ws://127.0.0.1:4912", "127.0.0.1", 4912, "/");
    good("ws://runner.local", "runner.local", 80, "/");
    good("ws://my_host:1/a/b?x=1", "my_host", 1, "/a/b?x=1");
    good("ws://[::1]:4912/", "::1", 4912, "/");
    good("ws://[fe80::1]/live", "fe80::1", 80, "/live");
    bad(NULL, "ws://");
    bad("wss://127.0.0.1/", "ws://");
    bad("http://127.0.0.1/", "ws://");
    bad("ws://", "host");
    bad("ws://:4912/", "host");
    bad("ws://127.0.0.1:0/", "port");
    bad("ws://127.0.0.1:65536/", "port");
    bad("ws://127.0.0.1:12ab/", "port");
    bad("ws://127.0.0.1:/", "port");
    bad("ws://[::1:4912/", "IPv6");
    bad("ws://ho st/", "character");
    bad("ws://host/a b", "space");
    bad("ws://host/a\nb", "control");
    bad("ws://averyveryveryveryveryveryveryveryveryveryveryveryveryverylonghostname/", "host");
    bad("ws://[::1]x/", "path");
    return check_summary();
}

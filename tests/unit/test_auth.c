/* test_auth.c - bearer tokens: the role table, header parsing, token files (good and bad
 * lines) and the generated admin token file (mode 0600, created once, read back later). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "auth/auth.h"

static char tmpdir[] = "/tmp/ei-test-auth-XXXXXX";

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0);
    if (fd < 0) return;
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    fchmod(fd, mode);
    close(fd);
}

static size_t read_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
    return n;
}

static void test_roles_from_config(void)
{
    config_token toks[] = {{"read-token-000001", CONFIG_ROLE_READ},
                           {"ingest-token-00001", CONFIG_ROLE_INGEST},
                           {"admin-token-000001", CONFIG_ROLE_ADMIN}};
    config c = {0};
    c.tokens = toks;
    c.n_tokens = 3;
    auth *a = NULL;
    er_err err = {{0}};
    CHECK(auth_create(&c, &a, &err) == ER_OK);
    if (!a) return;

    CHECK_EQ_INT(auth_check_token(a, "read-token-000001"), AUTH_READ);
    CHECK_EQ_INT(auth_check_token(a, "ingest-token-00001"), AUTH_INGEST);
    CHECK_EQ_INT(auth_check_token(a, "admin-token-000001"), AUTH_ADMIN);
    /* prefixes, extensions, case changes and empties never match */
    CHECK_EQ_INT(auth_check_token(a, "admin-token-00000"), AUTH_NONE);
    CHECK_EQ_INT(auth_check_token(a, "admin-token-0000012"), AUTH_NONE);
    CHECK_EQ_INT(auth_check_token(a, "ADMIN-TOKEN-000001"), AUTH_NONE);
    CHECK_EQ_INT(auth_check_token(a, ""), AUTH_NONE);
    CHECK_EQ_INT(auth_check_token(a, NULL), AUTH_NONE);

    /* the header: "Bearer" in any case, spaces around the token tolerated */
    CHECK_EQ_INT(auth_check(a, "Bearer admin-token-000001"), AUTH_ADMIN);
    CHECK_EQ_INT(auth_check(a, "bearer admin-token-000001"), AUTH_ADMIN);
    CHECK_EQ_INT(auth_check(a, "BEARER   read-token-000001  "), AUTH_READ);
    CHECK_EQ_INT(auth_check(a, "Bearer\tingest-token-00001"), AUTH_INGEST);
    CHECK_EQ_INT(auth_check(a, "Bearer"), AUTH_NONE);
    CHECK_EQ_INT(auth_check(a, "Bearer "), AUTH_NONE);
    CHECK_EQ_INT(auth_check(a, "Beareradmin-token-000001"), AUTH_NONE);
    CHECK_EQ_INT(auth_check(a, "Basic admin-token-000001"), AUTH_NONE);
    CHECK_EQ_INT(auth_check(a, "admin-token-000001"), AUTH_NONE);
    CHECK_EQ_INT(auth_check(a, "Bearer admin-token-000001 extra"), AUTH_NONE);
    CHECK_EQ_INT(auth_check(a, NULL), AUTH_NONE);
    char huge[2000] = "Bearer ";
    memset(huge + 7, 'x', 1900);
    CHECK_EQ_INT(auth_check(a, huge), AUTH_NONE);
    auth_destroy(a);
}

/* a configured token under CONFIG_TOKEN_MIN is refused by auth too (a config built in code) */
static void test_short_config_token(void)
{
    config_token toks[] = {{"fifteen-chars-x", CONFIG_ROLE_ADMIN}};
    config c = {0};
    c.tokens = toks;
    c.n_tokens = 1;
    auth *a = NULL;
    er_err err = {{0}};
    CHECK_EQ_INT(auth_create(&c, &a, &err), ER_CONFIG);
    CHECK(a == NULL);
    CHECK(strstr(err.msg, "tokens[0]") != NULL);
}

static void test_allows(void)
{
    /* read: GET; ingest: POST inferences only (no reads); admin: everything */
    CHECK(auth_allows(AUTH_READ, AUTH_READ));
    CHECK(!auth_allows(AUTH_READ, AUTH_INGEST));
    CHECK(!auth_allows(AUTH_READ, AUTH_ADMIN));
    CHECK(auth_allows(AUTH_INGEST, AUTH_INGEST));
    CHECK(!auth_allows(AUTH_INGEST, AUTH_READ));
    CHECK(!auth_allows(AUTH_INGEST, AUTH_ADMIN));
    CHECK(auth_allows(AUTH_ADMIN, AUTH_READ));
    CHECK(auth_allows(AUTH_ADMIN, AUTH_INGEST));
    CHECK(auth_allows(AUTH_ADMIN, AUTH_ADMIN));
    CHECK(!auth_allows(AUTH_NONE, AUTH_READ));
    CHECK(auth_allows(AUTH_NONE, AUTH_NONE));
}

static void test_token_file(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/tokens.txt", tmpdir);
    write_file(path,
               "# LAN tokens\n"
               "\n"
               "reader-aaaaaaaaaaaa read\n"
               "  writer-bbbbbbbbbbbb   ingest  \r\n"
               "\t# indented comment\n"
               "boss-cccccccccccccc admin",
               0600);
    config_token extra[] = {{"from-config-000001", CONFIG_ROLE_READ}};
    config c = {0};
    c.token_file = path;
    c.tokens = extra;
    c.n_tokens = 1;
    auth *a = NULL;
    er_err err = {{0}};
    CHECK(auth_create(&c, &a, &err) == ER_OK);
    if (a) {
        CHECK_EQ_INT(auth_check_token(a, "reader-aaaaaaaaaaaa"), AUTH_READ);
        CHECK_EQ_INT(auth_check_token(a, "writer-bbbbbbbbbbbb"), AUTH_INGEST);
        CHECK_EQ_INT(auth_check_token(a, "boss-cccccccccccccc"), AUTH_ADMIN);
        CHECK_EQ_INT(auth_check_token(a, "from-config-000001"), AUTH_READ);
        CHECK_EQ_INT(auth_check_token(a, "#"), AUTH_NONE);
        auth_destroy(a);
    }
    /* with a token file and config tokens, nothing is generated next to the database */
    char gen[256];
    snprintf(gen, sizeof gen, "%s/ei-relay.token", tmpdir);
    CHECK(access(gen, F_OK) != 0);

    /* bad lines fail with the line number and leave nothing behind */
    const struct {
        const char *text;
        const char *line;
    } bad[] = {
        {"justatoken\n", "line 1"},
        {"# ok\ntok superuser\n", "line 2"},
        {"long-enough-token-a read\n\ntok read extra\n", "line 3"},
        {"tok READ\n", "line 1"},
        {"tok\tread\x01\n", "line 1"},
        {" read\n", "line 1"},
        /* too short to resist guessing over the LAN */
        {"# ok\nfifteen-chars-x read\n", "line 2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i].text, 0600);
        config cb = {0};
        cb.token_file = path;
        auth *ab = NULL;
        er_err e = {{0}};
        CHECK(auth_create(&cb, &ab, &e) == ER_CONFIG);
        CHECK(ab == NULL);
        if (!strstr(e.msg, bad[i].line)) fprintf(stderr, "message: %s\n", e.msg);
        CHECK(strstr(e.msg, bad[i].line) != NULL);
    }
    /* a token file with no token at all is an error, not an open door */
    write_file(path, "# nothing here\n\n", 0600);
    config ce = {0};
    ce.token_file = path;
    auth *ae = NULL;
    er_err e = {{0}};
    CHECK(auth_create(&ce, &ae, &e) == ER_CONFIG);
    CHECK(strstr(e.msg, "no token") != NULL);
    /* a missing file names the file */
    snprintf(path, sizeof path, "%s/missing.txt", tmpdir);
    ce.token_file = path;
    CHECK(auth_create(&ce, &ae, &e) == ER_CONFIG);
    CHECK(strstr(e.msg, "missing.txt") != NULL);
}

static void test_generated(void)
{
    char db[256], gen[256];
    snprintf(db, sizeof db, "%s/ei.db", tmpdir);
    snprintf(gen, sizeof gen, "%s/ei-relay.token", tmpdir);
    unlink(gen);
    config c = {0};
    c.db_path = db;
    auth *a = NULL;
    er_err err = {{0}};
    CHECK(auth_create(&c, &a, &err) == ER_OK);

    struct stat st;
    CHECK(stat(gen, &st) == 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0600);
    char text[512];
    CHECK(read_file(gen, text, sizeof text) > 0);
    /* the one token line: 64 hex digits and "admin" */
    char token[128] = "";
    const char *line = strstr(text, "\n");
    CHECK(line != NULL);
    char role[16] = "";
    CHECK(line && sscanf(line + 1, "%127s %15s", token, role) == 2);
    CHECK_EQ_INT(strlen(token), 64);
    CHECK(strspn(token, "0123456789abcdef") == 64);
    CHECK_EQ_STR(role, "admin");
    CHECK_EQ_INT(auth_check_token(a, token), AUTH_ADMIN);
    auth_destroy(a);

    /* a later start reads the same token back and does not rewrite the file */
    a = NULL;
    CHECK(auth_create(&c, &a, &err) == ER_OK);
    CHECK_EQ_INT(auth_check_token(a, token), AUTH_ADMIN);
    char again[512];
    CHECK(read_file(gen, again, sizeof again) > 0);
    CHECK_EQ_STR(again, text);
    auth_destroy(a);

    /* a generated file someone emptied is refused, not replaced or opened up */
    write_file(gen, "# emptied\n", 0600);
    a = NULL;
    CHECK(auth_create(&c, &a, &err) == ER_CONFIG);
    CHECK(a == NULL);
    unlink(gen);

    /* a database directory that cannot be made (a file is in the way, which stops root
     * too): a clear error naming it */
    char blocker[512], bad_db[600];
    snprintf(blocker, sizeof blocker, "%s/not-a-dir", tmpdir);
    snprintf(bad_db, sizeof bad_db, "%s/sub/ei.db", blocker);
    write_file(blocker, "x", 0600);
    config bad = {0};
    bad.db_path = bad_db;
    CHECK(auth_create(&bad, &a, &err) == ER_IO);
    CHECK(strstr(err.msg, "not-a-dir") != NULL && strstr(err.msg, "token file") != NULL);
    unlink(blocker);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_roles_from_config();
    test_short_config_token();
    test_allows();
    test_token_file();
    test_generated();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_summary();
}

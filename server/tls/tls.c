/* tls.c - see tls.h. OpenSSL parses both files and checks that the key signs for the
 * certificate; nothing here listens or keeps OpenSSL objects past tls_material_load. */
#include "tls/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"

#define TLS_FILE_MAX (1024 * 1024) /* a certificate chain or a key is a few KiB */

struct tls_material {
    util_buf cert; /* PEM text, NUL-terminated */
    util_buf key;  /* PEM text, NUL-terminated; wiped before it is freed */
    char *cert_path;
    char *key_path;
};

/* A key with a passphrase is refused before OpenSSL would ask for one. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

/* The key file's mode: other users may not read (or write) it; its group may, with a warning
 * (a key of root:ssl-cert, mode 0640, is how Debian shares keys with a service). */
static er_rc check_key_mode(const char *path, er_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0) return ER_OK; /* reading it says what is wrong */
    unsigned mode = (unsigned)(st.st_mode & 07777);
    if (st.st_mode & S_IRWXO)
        return er_fail(err, ER_CONFIG,
                       "tls_key_file %.100s is open to other users (mode %04o): chmod 600 it "
                       "(or 640 with a group of its own)",
                       path, mode);
    if (st.st_mode & S_IRWXG)
        log_warn("tls", "tls_key_file %s is readable by its group (mode %04o, gid %u)", path, mode,
                 (unsigned)st.st_gid);
    return ER_OK;
}

/* Reads one of the two files; any failure is a configuration error naming the setting. */
static er_rc read_pem(const char *setting, const char *path, util_buf *out, er_err *err)
{
    er_rc rc = util_read_file(path, TLS_FILE_MAX, setting, out, err);
    if (rc == ER_NOMEM) return rc;
    return rc ? ER_CONFIG : ER_OK; /* err already says "<setting> <path>: why" */
}

/* A "YYYY-MM-DD" rendering of an ASN.1 time, for the messages. */
static void day_of(const ASN1_TIME *t, char *out, size_t n)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1 || strftime(out, n, "%Y-%m-%d", &tm) == 0)
        snprintf(out, n, "?");
}

/* Parses both PEM texts and checks they belong together; logs what is served. */
static er_rc check_pair(const tls_material *m, er_err *err)
{
    er_rc rc = ER_CONFIG;
    BIO *cb = BIO_new_mem_buf(m->cert.data, (int)m->cert.len);
    BIO *kb = BIO_new_mem_buf(m->key.data, (int)m->key.len);
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    if (!cb || !kb) {
        rc = er_fail(err, ER_NOMEM, "tls: out of memory");
        goto done;
    }
    x = PEM_read_bio_X509(cb, NULL, NULL, NULL);
    if (!x) {
        er_fail(err, ER_CONFIG, "tls_cert_file %.150s holds no PEM certificate", m->cert_path);
        goto done;
    }
    if (strstr(m->key.data, "ENCRYPTED")) {
        er_fail(err, ER_CONFIG,
                "tls_key_file %.150s is encrypted: the service needs a key without a passphrase",
                m->key_path);
        goto done;
    }
    k = PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL);
    if (!k) {
        er_fail(err, ER_CONFIG, "tls_key_file %.150s holds no PEM private key", m->key_path);
        goto done;
    }
    if (X509_check_private_key(x, k) != 1) {
        er_fail(err, ER_CONFIG,
                "tls_key_file %.90s is not the key of the certificate in tls_cert_file %.90s",
                m->key_path, m->cert_path);
        goto done;
    }
    char subject[160], until[16];
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof subject);
    day_of(X509_get0_notAfter(x), until, sizeof until);
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
        log_warn("tls", "the certificate in %s expired on %s: browsers will refuse it",
                 m->cert_path, until);
    else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
        log_warn("tls", "the certificate in %s is not valid yet (is the clock right?)",
                 m->cert_path);
    log_info("tls", "HTTPS and WSS with the certificate %s (valid until %s)", subject, until);
    rc = ER_OK;
done:
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
    ERR_clear_error(); /* the thread's OpenSSL error queue is shared with libwebsockets */
    return rc;
}

er_rc tls_material_load(const char *cert_file, const char *key_file, tls_material **out,
                        er_err *err)
{
    er_rc rc = ER_NOMEM;
    tls_material *m = calloc(1, sizeof *m);
    if (!m) goto fail;
    m->cert_path = strdup(cert_file);
    m->key_path = strdup(key_file);
    if (!m->cert_path || !m->key_path) goto fail;
    if ((rc = check_key_mode(key_file, err))) goto fail;
    if ((rc = read_pem("tls_cert_file", cert_file, &m->cert, err))) goto fail;
    if ((rc = read_pem("tls_key_file", key_file, &m->key, err))) goto fail;
    if ((rc = check_pair(m, err))) goto fail;
    *out = m;
    return ER_OK;
fail:
    if (rc == ER_NOMEM) er_fail(err, rc, "tls: out of memory");
    tls_material_destroy(m);
    return rc;
}

const char *tls_cert_pem(const tls_material *m)
{
    return m->cert.data;
}

const char *tls_key_pem(const tls_material *m)
{
    return m->key.data;
}

const char *tls_cert_path(const tls_material *m)
{
    return m->cert_path;
}

const char *tls_key_path(const tls_material *m)
{
    return m->key_path;
}

void tls_material_destroy(tls_material *m)
{
    if (!m) return;
    if (m->key.data) explicit_bzero(m->key.data, m->key.len);
    util_buf_free(&m->key);
    util_buf_free(&m->cert);
    free(m->cert_path);
    free(m->key_path);
    free(m);
}

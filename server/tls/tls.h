/* tls.h - the certificate and private key of the relay's optional HTTPS and WSS listeners
 * (settings tls_cert_file, tls_key_file), read and checked once at start so that every problem
 * is a clear configuration error before anything listens: a file that cannot be read, is not
 * PEM, an encrypted key, a key that does not belong to the certificate, or a key that other
 * users may read (refused; readable by its group only: a warning, as Debian's ssl-cert group
 * does it). An expired or not yet valid certificate is only warned about (a gateway without a
 * real-time clock may not know the date yet).
 *
 * The HTTP server (libmicrohttpd, GnuTLS) takes the PEM text from memory; the live stream
 * (libwebsockets, OpenSSL) loads the files by path, which keeps a certificate chain whole. */
#ifndef EI_TLS_TLS_H
#define EI_TLS_TLS_H

#include <stddef.h>

#include "core/rc.h"

typedef struct tls_material tls_material; /* opaque */

/* Reads and checks cert_file and key_file (both set). ER_CONFIG with err naming the setting and
 * the path on any problem. The paths are copied; *out is owned by the caller
 * (tls_material_destroy). */
er_rc tls_material_load(const char *cert_file, const char *key_file, tls_material **out,
                        er_err *err);
/* The certificate file's PEM text (NUL-terminated; the chain as the file has it). Borrowed:
 * lives as long as m. */
const char *tls_cert_pem(const tls_material *m);
/* The private key's PEM text (NUL-terminated). Borrowed: lives as long as m. */
const char *tls_key_pem(const tls_material *m);
/* The paths as configured. Borrowed: live as long as m. */
const char *tls_cert_path(const tls_material *m);
const char *tls_key_path(const tls_material *m);
/* Wipes the key's bytes and frees. NULL is fine. */
void tls_material_destroy(tls_material *m);

#endif

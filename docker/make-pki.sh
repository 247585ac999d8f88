#!/bin/sh
# make-pki.sh - a throw-away PKI for docker/compose.yaml (run once by its "pki" service, in
# debian:12-slim): a CA, mosquitto's server certificate for the host name "mosquitto", and the
# relay's client certificate. Idempotent: an existing CA is kept. Keys are readable only by
# their user: mosquitto (uid 1883 in the eclipse-mosquitto image) and ei-relay (uid 4920).
set -eu
dir=${1:-/pki}
[ -f "$dir/ca.crt" ] && exit 0
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }
cd "$dir"
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -keyout ca.key -out ca.crt -days 3650 -subj /CN=ei-relay-compose-ca
leaf() { # name, CN, extensions
    openssl req -new $ec -keyout "$1.key" -out "$1.csr" -subj "/CN=$2"
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
        -extfile "$1.ext" -out "$1.crt"
    rm -f "$1.csr" "$1.ext"
}
leaf server mosquitto "subjectAltName=DNS:mosquitto,DNS:localhost"
leaf relay ei-relay "extendedKeyUsage=clientAuth"
chown 1883:1883 server.key && chmod 0600 server.key
chown 4920:4920 relay.key && chmod 0600 relay.key
chmod 0644 ca.crt server.crt relay.crt
rm -f ca.key

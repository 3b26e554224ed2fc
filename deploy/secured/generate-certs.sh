#!/bin/sh
# Makes the example TLS material of docker-compose.secured.yml, once, into $CERTS_DIR
# (default /certs): a throw-away CA and two certificates it signs, all as PEM files.
#
#   ca.pem     the CA's certificate: what Eddy (towards Kafka), curl and `eddy shell` trust
#   kafka.pem  the broker's certificate, the CA's, then its PKCS#8 key encrypted with
#              $KAFKA_KEY_PASSWORD: Kafka's PEM key store (ssl.keystore.type=PEM), which
#              requires ssl.key.password and an encrypted key
#   eddy.pem   Eddy's HTTPS certificate, the CA's, then its unencrypted key: Eddy's PEM key
#              store (ssl.keystore.type=PEM)
#
# Example material only: the CA key is thrown away, the files are readable by every user of
# the containers, and the passwords are the example ones of the compose file.
set -eu

out="${CERTS_DIR:-/certs}"
: "${KAFKA_KEY_PASSWORD:?set KAFKA_KEY_PASSWORD, the password of the broker key}"

if [ -s "$out/ca.pem" ] && [ -s "$out/kafka.pem" ] && [ -s "$out/eddy.pem" ]; then
    echo "certificates already in $out"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

# A configuration of its own, so that the image's openssl.cnf adds nothing.
cat > openssl.cnf <<'CNF'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
CNF
openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -subj "/CN=Eddy example CA" -config openssl.cnf -extensions ca \
    -keyout ca.key -out ca.pem

# issue NAME SUBJECT_ALT_NAMES: NAME.key (unencrypted PKCS#8) and NAME.crt, signed by the CA
# for both TLS server and client use.
issue() {
    openssl req -new -newkey rsa:2048 -nodes -config openssl.cnf -subj "/CN=$1" \
        -keyout "$1.key" -out "$1.csr"
    cat > "$1.ext" <<EXT
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $2
EXT
    openssl x509 -req -sha256 -days 825 -in "$1.csr" -CA ca.pem -CAkey ca.key \
        -CAcreateserial -extfile "$1.ext" -out "$1.crt"
}

# The broker is reached as kafka:9093 inside the compose network and localhost:9092 from the
# host; Eddy as https://localhost:8088 from the host and https://eddy:8088 inside.
issue kafka "DNS:kafka,DNS:localhost,IP:127.0.0.1"
issue eddy "DNS:eddy,DNS:localhost,IP:127.0.0.1"

# Kafka's PEM key store reads an encrypted PKCS#8 key; PBE-SHA1-3DES is a scheme every Java
# runtime decrypts.
openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in kafka.key -passout "pass:$KAFKA_KEY_PASSWORD" \
    -out kafka.key.encrypted

mkdir -p "$out"
cat kafka.crt ca.pem kafka.key.encrypted > "$out/kafka.pem"
cat eddy.crt ca.pem eddy.key > "$out/eddy.pem"
cp ca.pem "$out/ca.pem"
chmod 0644 "$out/ca.pem" "$out/kafka.pem" "$out/eddy.pem"
echo "wrote $out/ca.pem, $out/kafka.pem and $out/eddy.pem"

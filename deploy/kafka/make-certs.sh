#!/usr/bin/env bash
# Make the TLS material and SCRAM passwords deploy/compose.secure.yml reads, for a development
# or staging broker: a private CA, the broker's certificate (SAN kafka, localhost, 127.0.0.1),
# the admin/init client certificate, a PKCS12 truststore with the CA, and one random password
# per SCRAM principal of deploy/kafka/acls.conf. Production certificates come from the
# organisation's PKI instead (deploy/kafka/TLS.md); the file names stay the same.
#
# Usage: deploy/kafka/make-certs.sh [OUT_DIR]     (default deploy/secrets/kafka)
# Needs openssl and keytool (Debian: openssl, default-jre-headless).
# Never overwrites: delete OUT_DIR first to start again (which invalidates every credential).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../secrets/kafka}
days=${CERT_DAYS:-397}

for tool in openssl keytool; do
  command -v "$tool" >/dev/null || { echo "make-certs: $tool is not installed" >&2; exit 1; }
done
if [[ -e "$out/ca.crt" ]]; then
  echo "make-certs: $out already holds a CA; remove the directory to start again" >&2
  exit 1
fi

umask 077
mkdir -p "$out/scram" "$out/ca"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Private CA. Its key signs every certificate below: keep ca/ca.key offline once done.
openssl req -x509 -newkey rsa:3072 -sha256 -days 1825 -nodes -subj "/CN=peerlink-kafka-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$out/ca/ca.key" -out "$out/ca.crt" 2>/dev/null

# issue NAME CN EXTENSIONS: NAME.p12 (key + certificate + CA) protected by NAME.password.
issue() {
  local name=$1 cn=$2 extensions=$3
  openssl req -newkey rsa:3072 -sha256 -nodes -subj "/CN=$cn" \
    -keyout "$work/$name.key" -out "$work/$name.csr" 2>/dev/null
  printf '%s\n' "$extensions" >"$work/$name.ext"
  openssl x509 -req -sha256 -days "$days" -in "$work/$name.csr" \
    -CA "$out/ca.crt" -CAkey "$out/ca/ca.key" -CAcreateserial -CAserial "$out/ca/ca.srl" \
    -extfile "$work/$name.ext" -out "$work/$name.crt" 2>/dev/null
  openssl rand -hex 24 | tr -d '\n' >"$out/$name.password"
  openssl pkcs12 -export -name "$name" -in "$work/$name.crt" -inkey "$work/$name.key" \
    -certfile "$out/ca.crt" -passout "file:$out/$name.password" -out "$out/$name.p12"
}

# The broker: server certificate for every listener, and client certificate towards its own
# controller listener. Principal User:CN=peerlink-kafka-broker (a super user).
issue broker peerlink-kafka-broker "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:kafka,DNS:localhost,IP:127.0.0.1"

# The admin/init job (deploy/kafka/setup-security.sh). Principal User:CN=peerlink-kafka-admin.
issue admin peerlink-kafka-admin "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"

openssl rand -hex 24 | tr -d '\n' >"$out/truststore.password"
keytool -importcert -noprompt -alias peerlink-kafka-ca -file "$out/ca.crt" \
  -keystore "$out/truststore.p12" -storetype PKCS12 \
  -storepass:file "$out/truststore.password" >/dev/null 2>&1

# One SCRAM password per principal of the ACL table.
awk '!/^[[:space:]]*(#|$)/ && !seen[$1]++ { print $1 }' "$here/acls.conf" | while read -r principal; do
  openssl rand -hex 32 | tr -d '\n' >"$out/scram/$principal.password"
done

# Compose bind-mounts these files into containers running as other users (Kafka uid 1000,
# Peerlink 10001): readable files inside private directories. The CA key stays private.
chmod 700 "$out" "$out/scram" "$out/ca"
find "$out" -maxdepth 2 -type f ! -path "$out/ca/*" -exec chmod 644 {} +
echo "make-certs: wrote $out (move $out/ca/ca.key offline)"

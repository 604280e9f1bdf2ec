# Shared by the scripts in deploy/kafka that run inside the apache/kafka image. Sourced, not run.
#
# Passwords are read from the secret files at run time and written only to a mode-600 client
# configuration under /tmp inside the container; they are never echoed, never put in the
# environment of compose, and never baked into an image.

KAFKA_BIN=${KAFKA_BIN:-/opt/kafka/bin}
SECRETS_DIR=${KAFKA_SECRETS_DIR:-/etc/kafka/secrets}
TRUSTSTORE=${KAFKA_TRUSTSTORE:-$SECRETS_DIR/truststore.p12}
TRUSTSTORE_PASSWORD_FILE=${KAFKA_TRUSTSTORE_PASSWORD_FILE:-$SECRETS_DIR/truststore.password}

# The principals named in an ACL table (first column), once each, in order of appearance.
acl_principals() {
  awk '!/^[[:space:]]*(#|$)/ && !seen[$1]++ { print $1 }' "$1"
}

# write_client_config KEYSTORE PASSWORD_FILE OUT: a TLS client configuration (mutual TLS,
# PKCS12 keystore and truststore) for the BROKER listener, where the principal is the
# certificate's subject.
write_client_config() {
  local keystore=$1 password_file=$2 out=$3
  local store_password trust_password
  store_password=$(<"$password_file")
  trust_password=$(<"$TRUSTSTORE_PASSWORD_FILE")
  (
    umask 077
    cat >"$out" <<PROPERTIES
security.protocol=SSL
ssl.keystore.type=PKCS12
ssl.keystore.location=$keystore
ssl.keystore.password=$store_password
ssl.key.password=$store_password
ssl.truststore.type=PKCS12
ssl.truststore.location=$TRUSTSTORE
ssl.truststore.password=$trust_password
ssl.endpoint.identification.algorithm=https
PROPERTIES
  )
}

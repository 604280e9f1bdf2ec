#!/usr/bin/env bash
# Health check of the Kafka broker in deploy/compose.secure.yml: an API-versions request over
# the mutual-TLS BROKER listener with the broker's own certificate (a super user), because the
# SASL_SSL listeners need a SCRAM login. Exit status 0 when the broker answers.
set -euo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"

conf=$(mktemp /tmp/healthcheck.XXXXXX)
trap 'rm -f "$conf"' EXIT
write_client_config "$SECRETS_DIR/broker.p12" "$SECRETS_DIR/broker.password" "$conf"
"$KAFKA_BIN/kafka-broker-api-versions.sh" --bootstrap-server "${KAFKA_BROKER_LISTENER:-kafka:29093}" \
  --command-config "$conf" >/dev/null 2>&1

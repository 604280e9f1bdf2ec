#!/usr/bin/env bash
# Entry point of the kafka-security job in deploy/compose.secure.yml: once the broker is
# healthy, log in as the admin/init principal (TLS client certificate CN=peerlink-kafka-admin,
# a super user) on the BROKER listener, create the SCRAM users, then the ACLs.
set -euo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"

acl_table=${PEERLINK_KAFKA_ACLS:-$here/acls.conf}
admin_config=$(mktemp /tmp/admin.XXXXXX)
trap 'rm -f "$admin_config"' EXIT
write_client_config "$SECRETS_DIR/admin.p12" "$SECRETS_DIR/admin.password" "$admin_config"

bash "$here/scram-users.sh" "$acl_table" "$admin_config"
bash "$here/acls.sh" "$acl_table" "$admin_config"
echo "kafka-security: SCRAM users and ACLs in place"

#!/usr/bin/env bash
# Create or update one SCRAM-SHA-512 user per principal of the ACL table (services, partner
# organisations, operations), with the password in $SCRAM_DIR/<principal> (a compose secret
# from deploy/secrets/kafka/scram/<principal>.password). Idempotent: re-running sets the same
# or a rotated password.
#
# Usage (inside the apache/kafka image, as the admin/init principal):
#   scram-users.sh ACL_TABLE ADMIN_CLIENT_CONFIG
set -euo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"

acl_table=$1
admin_config=$2
bootstrap=${KAFKA_ADMIN_BOOTSTRAP:-kafka:29093}
scram_dir=${SCRAM_DIR:-/run/secrets/kafka-scram}
iterations=${SCRAM_ITERATIONS:-8192}

missing=0
while read -r principal; do
  password_file="$scram_dir/$principal"
  if [[ ! -s "$password_file" ]]; then
    echo "scram-users: no password file for $principal ($password_file)" >&2
    missing=1
    continue
  fi
  password=$(<"$password_file")
  # kafka-configs parses SCRAM-SHA-512=[...] itself: keep passwords to a safe alphabet
  # (deploy/kafka/make-certs.sh writes hex).
  if [[ ! "$password" =~ ^[A-Za-z0-9._~+/-]{24,}$ ]]; then
    echo "scram-users: the password of $principal must be >= 24 characters of [A-Za-z0-9._~+/-]" >&2
    missing=1
    continue
  fi
  "$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$bootstrap" --command-config "$admin_config" \
    --alter --entity-type users --entity-name "$principal" \
    --add-config "SCRAM-SHA-512=[iterations=$iterations,password=$password]" >/dev/null
  echo "scram-users: $principal"
done < <(acl_principals "$acl_table")
exit "$missing"

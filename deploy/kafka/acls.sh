#!/usr/bin/env bash
# Apply every line of the ACL table (deploy/kafka/acls.conf) with kafka-acls.sh --add.
# Idempotent. Lines removed from the table are not revoked: use kafka-acls.sh --remove.
#
# Usage (inside the apache/kafka image, as the admin/init principal):
#   acls.sh ACL_TABLE ADMIN_CLIENT_CONFIG
set -euo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"

acl_table=$1
admin_config=$2
bootstrap=${KAFKA_ADMIN_BOOTSTRAP:-kafka:29093}

lineno=0
while read -r principal resource pattern name operations extra; do
  lineno=$((lineno + 1))
  [[ -z "${principal:-}" || "$principal" == \#* ]] && continue
  if [[ -z "${operations:-}" || -n "${extra:-}" ]]; then
    echo "acls: $acl_table:$lineno: expected 5 columns" >&2
    exit 2
  fi
  args=(--add --allow-principal "User:$principal" --resource-pattern-type "${pattern^^}")
  case "$resource" in
    topic) args+=(--topic "$name") ;;
    group) args+=(--group "$name") ;;
    cluster) args+=(--cluster) ;;
    *) echo "acls: $acl_table:$lineno: unknown resource type $resource" >&2; exit 2 ;;
  esac
  IFS=, read -r -a ops <<<"$operations"
  for op in "${ops[@]}"; do
    args+=(--operation "$op")
  done
  "$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$bootstrap" --command-config "$admin_config" \
    "${args[@]}" >/dev/null
  echo "acls: allow User:$principal $operations on $resource:$pattern:$name"
done <"$acl_table"

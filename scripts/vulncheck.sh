#!/usr/bin/env bash
# Runs govulncheck against a vulnerability database built from the
# golang.org/x/vulndb module (served by the Go module proxy, so no other
# network access is needed). Fails on any finding that docs/security.md does
# not list as accepted, with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."

vulndb_version=v0.0.0-20261105234957-e22db6528018
db=".cache/vulndb-$vulndb_version"
if [ ! -f "$db/index/db.json" ]; then
	echo "vulncheck: building the vulnerability database ($vulndb_version)"
	src=$(go mod download -json "golang.org/x/vulndb@$vulndb_version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
	rm -rf "$db.tmp" && mkdir -p "$db.tmp"
	go run "golang.org/x/vulndb/cmd/indexdb@$vulndb_version" -vulns "$src/data/osv" -out "$db.tmp"
	mv "$db.tmp" "$db"
fi

out=$(go tool govulncheck -db "file://$PWD/$db" ./... 2>&1) && { echo "$out" | tail -3; exit 0; }
found=$(echo "$out" | sed -n 's/^Vulnerability #[0-9]*: \(GO-[0-9-]*\)$/\1/p' | sort -u)
if [ -z "$found" ]; then
	echo "$out"
	exit 1
fi
bad=0
for id in $found; do
	if grep -q "^| $id |" docs/security.md; then
		echo "vulncheck: $id accepted (docs/security.md)"
	else
		echo "vulncheck: $id is not fixed and not accepted"
		bad=1
	fi
done
if [ $bad -ne 0 ]; then
	echo "$out"
fi
exit $bad

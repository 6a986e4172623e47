#!/bin/sh
# The baseline of `plana keys list -o json`: every page of GET /v1/api-keys
# with curl, the same page size and filter plana uses, following
# next_page_token, each page to stdout. The Authorization header comes from
# a file (curl -H @FILE) so the key never shows in argv. The token is the
# answer's last field, so only the page's tail is searched for it.
# Usage: sh bench/curl-list.sh API_URL HEADER_FILE
set -eu
url=$1
hdr=$2
page=$(mktemp)
trap 'rm -f "$page"' EXIT
tok=
while :; do
	curl -sSf -H @"$hdr" -o "$page" "$url/v1/api-keys?page_size=1000&status=active${tok:+&page_token=$tok}"
	cat "$page"
	tok=$(tail -c 200 "$page" | sed -n 's/.*"next_page_token":"\([^"]*\)".*/\1/p')
	[ -n "$tok" ] || break
done

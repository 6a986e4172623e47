#!/bin/sh
# plana's exec-ab: target for GitHub Actions secrets, which nothing can read
# back. The key lives in two secrets, NAME_A and NAME_B; the variable
# NAME_SLOT names the one holding the newer key, and NAME_A_PREFIX and
# NAME_B_PREFIX (variables: a key's prefix is public) the key each holds.
#
#   plana keys rotate KEY --no-wait --yes \
#     --to 'exec-ab:sh plana-gh-secret-ab.sh NAME --repo OWNER/REPO'
#
# Any gh flags after NAME (--repo, --env ENV, --org ORG) go to every gh
# call. gh needs a token that may write the repository's secrets and
# variables (GH_TOKEN).
#
# PLANA_STEP=deploy (the key on stdin, read by gh only): the new key goes
#   into the slot the old key is not in, and NAME_SLOT names it;
# PLANA_STEP=finalize: the old key's slot is emptied;
# PLANA_STEP=abort: the new key's slot is emptied, NAME_SLOT names the
#   old key's again;
# PLANA_STEP=list: the prefixes of the keys the slots hold, one a line.
# Only deploy needs the key, so any machine can finish the rotation.
#
# The automation's workflow reads the newer slot first, the other as the
# fallback, with the seed's code unchanged:
#   env:
#     PLANA_KEY_NEW: ${{ vars.NAME_SLOT == 'B' && secrets.NAME_B || secrets.NAME_A }}
#     PLANA_KEY: ${{ vars.NAME_SLOT == 'B' && secrets.NAME_A || secrets.NAME_B }}
# Before the first rotation, NAME_A holds the key in use (gh secret set
# NAME_A); NAME_B and the variables do not exist yet.
set -eu
name=${1:?usage: plana-gh-secret-ab.sh NAME [gh flags such as --repo OWNER/REPO]}
shift

vars=$(gh variable list "$@" --json name,value --jq '.[] | [.name, .value] | @tsv')
var() { printf '%s\n' "$vars" | awk -F '\t' -v n="${name}_$1" '$1 == n { print $2 }'; }
a=$(var A_PREFIX)
b=$(var B_PREFIX)

other() { if [ "$1" = A ]; then echo B; else echo A; fi; }
# holding prints the slot recorded as holding the key with prefix $1.
holding() {
	if [ -n "$1" ] && [ "$a" = "$1" ]; then echo A; elif [ -n "$1" ] && [ "$b" = "$1" ]; then echo B; fi
}
# has_secret says whether the secret of slot $1 exists, after secrets=$(names).
names() { gh secret list "$@" --json name --jq '.[].name'; }
has_secret() { printf '%s\n' "$secrets" | grep -qx "${name}_$1"; }

case ${PLANA_STEP:?PLANA_STEP is not set: plana runs this script} in
list)
	for p in $a $b; do echo "$p"; done
	;;
deploy)
	s=$(holding "$PLANA_KEY_PREFIX") # deployed before: the same slot again
	if [ -z "$s" ]; then
		old=$(holding "$PLANA_OLD_KEY_PREFIX")
		if [ -z "$old" ] && [ -n "$a$b" ]; then
			echo "neither ${name}_A nor ${name}_B is recorded as holding the key in use, $PLANA_OLD_KEY_PREFIX (they hold ${a:-nothing} and ${b:-nothing}): set ${name}_A_PREFIX or ${name}_B_PREFIX to say which does" >&2
			exit 1
		fi
		s=$(other "${old:-A}") # the first rotation: the key in use is in NAME_A
	fi
	gh secret set "${name}_$s" "$@" # the key from stdin, never in argv
	gh variable set "${name}_${s}_PREFIX" --body "$PLANA_KEY_PREFIX" "$@"
	gh variable set "${name}_SLOT" --body "$s" "$@"
	;;
finalize)
	s=$(holding "$PLANA_KEY_PREFIX")
	if [ -z "$s" ]; then
		echo "neither ${name}_A nor ${name}_B holds the new key $PLANA_KEY_PREFIX: deploy it first" >&2
		exit 1
	fi
	o=$(other "$s")
	secrets=$(names "$@")
	if has_secret "$o"; then gh secret delete "${name}_$o" "$@"; fi
	if [ -n "$(var "${o}_PREFIX")" ]; then gh variable delete "${name}_${o}_PREFIX" "$@"; fi
	;;
abort)
	s=$(holding "$PLANA_KEY_PREFIX")
	if [ -n "$s" ]; then
		secrets=$(names "$@")
		if has_secret "$s"; then gh secret delete "${name}_$s" "$@"; fi
		gh variable delete "${name}_${s}_PREFIX" "$@"
		gh variable set "${name}_SLOT" --body "$(other "$s")" "$@"
	fi
	;;
*)
	echo "unknown PLANA_STEP=$PLANA_STEP" >&2
	exit 1
	;;
esac

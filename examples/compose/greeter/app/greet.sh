#!/bin/bash
# Answers with a greeting, the distribution and bash's version.
echo "Content-Type: text/plain"
echo
. /etc/os-release
declare -A words=([hello]="hello" [bonjour]="bonjour")
echo "${words[${GREETING:-hello}]:-hi} from ${PRETTY_NAME} (bash ${BASH_VERSINFO[0]})"

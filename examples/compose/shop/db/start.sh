#!/bin/sh
# First start: the data directory gets the seed rows.
[ -s /data/items ] || cp /seed/items /data/items
exec httpd -f -p 80 -h /data

# wordpress-mysql: WordPress's installer through the published port writes
# the site into MariaDB; the front page shows its title, also after down and
# up (db_data volume; WordPress itself is copied afresh into the new
# container's volume).
round=$1
if [ "$round" = 1 ]; then
  # step=1: the form itself (the language chooser before it would ask
  # api.wordpress.org for translations, which this network cannot reach).
  page 'http://127.0.0.1/wp-admin/install.php?step=1' | grep -q 'weblog_title' || fail "the installer"
  page 'http://127.0.0.1/wp-admin/install.php?step=2' --data-urlencode 'weblog_title=Berth Stack' \
    -d user_name=admin -d admin_password=stack-pw-1234 -d admin_password2=stack-pw-1234 -d pw_weak=on \
    -d admin_email=admin@example.com -d Submit=Install | grep -q 'Success' || fail "the installation"
fi
front=$(page http://127.0.0.1/) || fail "the front page"
grep -q "<title>Berth Stack" <<<"$front" || fail "the front page has no title: $(head -c 300 <<<"$front")"
page http://127.0.0.1/wp-login.php | grep -q 'user_login' || fail "the login page"

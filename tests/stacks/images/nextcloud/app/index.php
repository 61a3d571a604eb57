<?php
// Not installed: the installation page; POST creates the admin account in
// the database and writes config/config.php. Installed: the login page;
// POST checks the account in the database and counts logins in Redis.
require __DIR__ . '/lib.php';
$c = nc_config();
if (empty($c['installed'])) {
	if ($_SERVER['REQUEST_METHOD'] === 'POST') {
		$user = $_POST['adminlogin'] ?? '';
		$pass = $_POST['adminpass'] ?? '';
		if ($user === '' || $pass === '') { http_response_code(400); exit("Set an admin username and password.\n"); }
		$AUTOCONFIG = [];
		include __DIR__ . '/config/autoconfig.php';
		$db = nc_db();
		$db->exec('CREATE TABLE IF NOT EXISTS oc_users (uid VARCHAR(64) PRIMARY KEY, password VARCHAR(255) NOT NULL)');
		$db->prepare('REPLACE INTO oc_users (uid, password) VALUES (?, ?)')->execute([$user, password_hash($pass, PASSWORD_DEFAULT)]);
		$CONFIG = $AUTOCONFIG + ['installed' => true, 'instanceid' => bin2hex(random_bytes(6))];
		file_put_contents(__DIR__ . '/config/config.php', '<?php $CONFIG = ' . var_export($CONFIG, true) . ";\n");
		header('Location: /index.php');
		exit("Installed.\n");
	}
	echo "<!DOCTYPE html><html><head><title>Nextcloud</title></head><body>\n";
	echo "<form method=\"post\"><h2>Create an admin account</h2>\n";
	echo "<input name=\"adminlogin\"><input name=\"adminpass\" type=\"password\">\n";
	echo "<p>Database: MySQL/MariaDB (configured)</p><button>Install</button></form></body></html>\n";
	exit;
}
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
	$q = nc_db()->prepare('SELECT password FROM oc_users WHERE uid = ?');
	$q->execute([$_POST['user'] ?? '']);
	$hash = $q->fetchColumn();
	if (!$hash || !password_verify($_POST['password'] ?? '', $hash)) { http_response_code(401); exit("Wrong username or password.\n"); }
	$logins = ($r = nc_redis()) ? $r->incr('nc:logins') : 'no cache';
	exit("Logged in as " . htmlspecialchars($_POST['user']) . "; logins: $logins\n");
}
echo "<!DOCTYPE html><html><head><title>Login - Nextcloud</title></head><body>\n";
echo "<form method=\"post\"><input name=\"user\"><input name=\"password\" type=\"password\"><button>Log in</button></form></body></html>\n";

<?php
// Shared by the pages: configuration, the database and Redis.
function nc_config() {
	$CONFIG = [];
	if (is_file(__DIR__ . '/config/config.php')) include __DIR__ . '/config/config.php';
	return $CONFIG;
}
function nc_db() {
	$AUTOCONFIG = [];
	$c = nc_config();
	if (empty($c['dbhost'])) {
		include __DIR__ . '/config/autoconfig.php';
		$c = $AUTOCONFIG;
	}
	return new PDO("mysql:host={$c['dbhost']};dbname={$c['dbname']}", $c['dbuser'], $c['dbpass'],
		[PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
}
function nc_redis() {
	$CONFIG_REDIS = null;
	if (is_file(__DIR__ . '/config/redis.config.php')) include __DIR__ . '/config/redis.config.php';
	if (!$CONFIG_REDIS) return null;
	$r = new Redis();
	$r->connect($CONFIG_REDIS['host'], $CONFIG_REDIS['port'], 2.0);
	if ($CONFIG_REDIS['password'] !== '') $r->auth($CONFIG_REDIS['password']);
	return $r;
}

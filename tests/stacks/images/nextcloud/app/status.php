<?php
require __DIR__ . '/lib.php';
require __DIR__ . '/version.php';
header('Content-Type: application/json');
$c = nc_config();
echo json_encode(['installed' => !empty($c['installed']), 'version' => $OC_VersionString, 'productname' => 'Nextcloud']), "\n";

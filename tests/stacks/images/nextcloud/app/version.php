<?php
$OC_VersionString = '27.1.0 stand-in';

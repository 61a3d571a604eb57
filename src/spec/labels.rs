//! The labels Docker Compose puts on what it makes (containers, networks,
//! volumes, images), by which it finds them again; berth writes and reads
//! the same, so `docker compose` and berth recognise each other's objects.
//!
//! Owns the names only; must not decide which object carries which.

/// The project an object belongs to.
pub const PROJECT: &str = "com.docker.compose.project";
/// The service a container (or built image) is of.
pub const SERVICE: &str = "com.docker.compose.service";
/// `True` on a one-off container (`compose run`), `False` otherwise.
pub const ONEOFF: &str = "com.docker.compose.oneoff";
/// The replica's number, from 1.
pub const CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
/// The service configuration's hash: a change means a recreate.
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// The compose files the project was loaded from, comma-separated.
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
/// The project's working directory.
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// The image (its id) a container was made from.
pub const IMAGE: &str = "com.docker.compose.image";
/// The version of the tool that made the object.
pub const VERSION: &str = "com.docker.compose.version";
/// A network's name in the compose file.
pub const NETWORK: &str = "com.docker.compose.network";
/// A container's dependencies, as Compose records them.
pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";

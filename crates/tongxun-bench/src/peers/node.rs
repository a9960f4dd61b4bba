//! The Node `socket.io` peer: `node/server.mjs`, installed with `npm ci` in `node/`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder holding `package.json`, `package-lock.json` and `server.mjs`.
pub(crate) fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Why the Node peer cannot run here, if it cannot.
pub(crate) fn unavailable() -> Option<String> {
    let installed = dir().join("node_modules/socket.io/package.json");
    if !installed.exists() {
        return Some(format!(
            "socket.io is not installed (run `npm ci --prefix {}`)",
            dir().display()
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("`node` is not on the PATH".to_owned()),
    }
}

/// The command that starts the Node peer on a free port (pinned with `--pin`).
pub(crate) fn command() -> Command {
    let mut command = crate::pin::server_command("node");
    command.arg(dir().join("server.mjs")).args(["--port", "0"]);
    command
}

/// `node --version`, and the installed socket.io version.
pub(crate) fn versions() -> (Option<String>, Option<String>) {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let socketio = std::fs::read_to_string(dir().join("node_modules/socket.io/package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|json| json["version"].as_str().map(str::to_owned));
    (node, socketio)
}

//! Every fact moonauth knows about the Codex CLI (`@openai/codex`): its binary, login
//! directory and files, the variables that log it in, its OAuth client and token endpoint
//! (shared/facts/credentials.md). Parsing its login file is `credentials::codex`'s.

use std::time::Duration;

/// The executable Codex is installed as.
pub const BINARY: &str = "codex";
/// How to install it, for a check's fix.
pub const INSTALL_HINT: &str =
    "install Codex in the worker image (npm install -g @openai/codex) or add its directory to PATH";

/// The variable Codex reads its login directory from (the directory must exist).
pub const DIR_VARIABLE: &str = "CODEX_HOME";
/// The file Codex keeps its login in, inside the login directory.
pub const AUTH_FILE: &str = "auth.json";
/// Codex's settings file, which says where the login is stored.
pub const CONFIG_FILE: &str = "config.toml";
/// The files that make up a login, in the order they are put in place: the credentials
/// file last, so a reader never sees new credentials with old settings.
pub const LOGIN_FILES: [&str; 2] = [CONFIG_FILE, AUTH_FILE];

/// An OpenAI API key; also the key's name inside `auth.json`.
pub const OPENAI_API_KEY: &str = "OPENAI_API_KEY";
/// Codex's own API key variable.
pub const CODEX_API_KEY: &str = "CODEX_API_KEY";
/// An access token handed to Codex as is.
pub const CODEX_ACCESS_TOKEN: &str = "CODEX_ACCESS_TOKEN";
/// The variables Codex logs in with instead of the file.
pub const CREDENTIAL_VARS: [&str; 2] = [CODEX_API_KEY, OPENAI_API_KEY];
/// Every variable through which Codex could pick a credential other than its login.
pub const COMPETING_VARS: [&str; 3] = [OPENAI_API_KEY, CODEX_API_KEY, CODEX_ACCESS_TOKEN];
/// The variables an API key is handed to Codex in.
pub const API_KEY_VARS: [&str; 2] = CREDENTIAL_VARS;

/// `codex login --device-auth`: the device code flow, since the browser callback on
/// localhost:1455 cannot reach a container.
pub const LOGIN_COMMAND: [&str; 3] = [BINARY, "login", "--device-auth"];
/// The arguments of Codex's own status command (`codex login status`).
pub const STATUS_ARGS: [&str; 2] = ["login", "status"];
/// Codex's own status command, as a person types it.
pub const STATUS_COMMAND: &str = "codex login status";

/// Codex's token endpoint.
pub const TOKEN_URL: &str = "https://auth.openai.com/oauth/token";
/// The variable codex itself reads a different token endpoint from; moonauth follows it.
pub const TOKEN_URL_VARIABLE: &str = "CODEX_REFRESH_TOKEN_URL_OVERRIDE";
/// Codex's OAuth client id.
pub const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
/// The scope Codex asks for.
pub const SCOPE: &str = "openid profile email";
/// Codex's own interval between refreshes, counted from `last_refresh` (public source:
/// `TOKEN_REFRESH_INTERVAL`).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(8 * 86_400);

//! Every fact moonauth knows about Claude Code (`@anthropic-ai/claude-code`): its binary,
//! login directory and files, the variables that log it in, its OAuth client and token
//! endpoint (shared/facts/credentials.md). Parsing its login file is `credentials::claude`'s.

/// The executable Claude Code is installed as.
pub const BINARY: &str = "claude";
/// How to install it, for a check's fix.
pub const INSTALL_HINT: &str =
    "install Claude Code in the worker image (npm install -g @anthropic-ai/claude-code) or add its directory to PATH";

/// The variable Claude Code reads its login directory from.
pub const DIR_VARIABLE: &str = "CLAUDE_CONFIG_DIR";
/// The file Claude Code keeps its login in, inside the login directory.
pub const CREDENTIALS_FILE: &str = ".credentials.json";
/// Claude Code's settings and account cache, beside the login.
pub const ACCOUNT_FILE: &str = ".claude.json";
/// Claude Code's user settings.
pub const SETTINGS_FILE: &str = "settings.json";
/// The files that make up a login, in the order they are put in place: the credentials
/// file last, so a reader never sees new credentials with old settings.
pub const LOGIN_FILES: [&str; 3] = [ACCOUNT_FILE, SETTINGS_FILE, CREDENTIALS_FILE];

/// An API key (API billing).
pub const ANTHROPIC_API_KEY: &str = "ANTHROPIC_API_KEY";
/// A bearer token sent as is.
pub const ANTHROPIC_AUTH_TOKEN: &str = "ANTHROPIC_AUTH_TOKEN";
/// An older name for the API key some setups still set.
pub const CLAUDE_API_KEY: &str = "CLAUDE_API_KEY";
/// A long-lived subscription token (`claude setup-token`).
pub const CLAUDE_CODE_OAUTH_TOKEN: &str = "CLAUDE_CODE_OAUTH_TOKEN";
/// The variables Claude Code logs in with instead of the file, in the order it prefers them.
pub const CREDENTIAL_VARS: [&str; 3] = [ANTHROPIC_AUTH_TOKEN, ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN];
/// Every variable through which Claude Code could pick a credential other than its login.
pub const COMPETING_VARS: [&str; 4] = [
    ANTHROPIC_API_KEY,
    ANTHROPIC_AUTH_TOKEN,
    CLAUDE_API_KEY,
    CLAUDE_CODE_OAUTH_TOKEN,
];
/// The variables an API key is handed to Claude Code in.
pub const API_KEY_VARS: [&str; 1] = [ANTHROPIC_API_KEY];

/// `claude auth login`: the subscription login.
pub const LOGIN_COMMAND: [&str; 3] = [BINARY, "auth", "login"];
/// The arguments of Claude Code's own status command (`claude auth status`).
pub const STATUS_ARGS: [&str; 2] = ["auth", "status"];
/// Claude Code's own status command, as a person types it.
pub const STATUS_COMMAND: &str = "claude auth status";

/// Claude Code's token endpoint; the CLI cannot be redirected by environment.
pub const TOKEN_URL: &str = "https://platform.claude.com/v1/oauth/token";
/// The variable moonauth reads a different token endpoint from (tests, proxies).
pub const TOKEN_URL_VARIABLE: &str = "MOONAUTH_CLAUDE_TOKEN_URL";
/// Claude Code's OAuth client id.
pub const CLIENT_ID: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";
/// The scopes Claude Code 2.1.330 asks for when the file names none.
pub const DEFAULT_SCOPES: &str =
    "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload user:plugins";
/// The OAuth scope without which Claude Code does not use a stored login.
pub const INFERENCE_SCOPE: &str = "user:inference";

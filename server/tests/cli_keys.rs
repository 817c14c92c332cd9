//! `simrelay serve` prints how to get in (the admin key it generated, once), and `simrelay
//! keys` / `simrelay accounts` work on the data directory and against a running relay; a key
//! revoked from the command line is refused by the running relay on its next request.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::Value;

struct Relay {
    child: Child,
    url: String,
    /// The admin key line's key, when one was generated.
    admin: Option<String>,
    _lines: Lines<BufReader<ChildStdout>>,
}

impl Relay {
    fn start(dir: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_simrelay"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir)
            .env("SIMRELAY_LOG", "warn")
            .env_remove("SIMRELAY_API_KEY")
            .env_remove("SIMRELAY_ADMIN_KEY")
            .stdout(Stdio::piped())
            .spawn()
            .expect("simrelay starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut next = || lines.next().expect("a line").expect("utf-8");
        let url = next()
            .strip_prefix("listening on ")
            .expect("listening line")
            .to_string();
        let admin_line = next();
        assert!(admin_line.starts_with("admin key"), "{admin_line}");
        let admin = admin_line
            .strip_prefix("admin key (shown once, stored hashed; it creates accounts and keys): ")
            .map(String::from);
        Relay {
            child,
            url,
            admin,
            _lines: lines,
        }
    }

    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        assert!(self.child.wait().expect("exits").success());
    }
}

impl Drop for Relay {
    /// A failed test does not leave the relay running (after `stop` it has exited already).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `simrelay ARGS` (with SIMRELAY_KEY = `key` when given) and parses its JSON output.
fn cli(args: &[&str], key: Option<&str>) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_simrelay"));
    cmd.args(args)
        .env("SIMRELAY_LOG", "warn")
        .env_remove("SIMRELAY_KEY");
    if let Some(k) = key {
        cmd.env("SIMRELAY_KEY", k);
    }
    let out = cmd.output().expect("simrelay runs");
    assert!(
        out.status.success(),
        "simrelay {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

async fn status(url: &str, key: &str) -> u16 {
    simrelay_server::install_crypto_provider();
    reqwest::Client::new()
        .get(format!("{url}/v1/messages"))
        .bearer_auth(key)
        .send()
        .await
        .expect("relay answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn serve_prints_the_admin_key_once_and_the_cli_manages_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path");
    let relay = Relay::start(dir.path());
    let admin = relay
        .admin
        .clone()
        .expect("generated and printed on first start");
    assert!(admin.starts_with("sr_"));

    // On the data directory, while the relay runs.
    let created = cli(
        &["accounts", "create", "--data", data, "--name", "acme"],
        None,
    );
    let account = created["account"]["id"]
        .as_str()
        .expect("account id")
        .to_string();
    let first = created["key"]["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    assert_eq!(status(&relay.url, &first).await, 200);
    let listed = cli(
        &["keys", "list", "--data", data, "--account", &account],
        None,
    );
    let id = listed["items"][0]["id"]
        .as_str()
        .expect("key id")
        .to_string();
    assert!(
        !listed.to_string().contains(&first),
        "secrets are not listed"
    );
    let accounts = cli(&["accounts", "list", "--data", data], None);
    assert_eq!(accounts["items"].as_array().expect("items").len(), 2);
    let more = cli(
        &[
            "keys",
            "create",
            "--data",
            data,
            "--account",
            &account,
            "--name",
            "reader",
            "--scopes",
            "read",
        ],
        None,
    );
    let reader = more["secret"].as_str().expect("secret").to_string();
    assert_eq!(status(&relay.url, &reader).await, 200);
    let revoked = cli(&["keys", "revoke", "--data", data, &id], None);
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(
        status(&relay.url, &first).await,
        401,
        "refused on its next request"
    );

    // Against the running relay, with the admin key from the environment.
    let url = relay.url.as_str();
    let made = cli(
        &[
            "keys", "create", "--url", url, "--name", "ops", "--scopes", "read",
        ],
        Some(&admin),
    );
    let ops = made["secret"].as_str().expect("secret").to_string();
    let ops_id = made["id"].as_str().expect("id").to_string();
    assert_eq!(status(url, &ops).await, 200);
    let listed = cli(&["keys", "list", "--url", url], Some(&admin));
    assert!(listed.to_string().contains(&ops_id));
    cli(&["keys", "revoke", "--url", url, &ops_id], Some(&admin));
    assert_eq!(status(url, &ops).await, 401);
    let remote = cli(
        &["accounts", "create", "--url", url, "--name", "beta"],
        Some(&admin),
    );
    assert!(remote["key"]["secret"].is_string());
    let accounts = cli(&["accounts", "list", "--url", url], Some(&admin));
    assert_eq!(accounts["items"].as_array().expect("items").len(), 3);
    relay.stop();

    // The next start generates nothing and says where keys come from.
    let relay = Relay::start(dir.path());
    assert_eq!(relay.admin, None);
    assert_eq!(status(&relay.url, &admin).await, 200);
    relay.stop();
}

#[test]
fn a_short_api_key_is_refused_at_start_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_simrelay"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            "k",
            "--data",
        ])
        .arg(dir.path())
        .env("SIMRELAY_LOG", "warn")
        .output()
        .expect("simrelay runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("api_key") && err.contains("128 bits"), "{err}");
    assert!(!err.contains(" k "), "the key itself is not echoed: {err}");
}

/// `simrelay users` on the data directory (a generated password, printed once) and against the
/// running relay; the relay takes the user's Basic auth at once and refuses it once deleted.
#[tokio::test]
async fn the_cli_manages_compat_users() {
    use base64::Engine;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path");
    let relay = Relay::start(dir.path());
    let admin = relay.admin.clone().expect("admin key");
    let created = cli(
        &["accounts", "create", "--data", data, "--name", "qa"],
        None,
    );
    let account = created["account"]["id"].as_str().expect("id").to_string();
    let key = created["key"]["secret"]
        .as_str()
        .expect("secret")
        .to_string();

    let user = cli(
        &[
            "users",
            "create",
            "--data",
            data,
            "--login",
            "qa-bot",
            "--account",
            &account,
        ],
        None,
    );
    let password = user["password"]
        .as_str()
        .expect("generated password")
        .to_string();
    let devices = |login: &str, password: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"));
        let url = format!("{}/3rdparty/v1/devices", relay.url);
        async move {
            reqwest::Client::new()
                .get(url)
                .header("authorization", format!("Basic {auth}"))
                .send()
                .await
                .expect("relay answers")
                .status()
                .as_u16()
        }
    };
    simrelay_server::install_crypto_provider();
    assert_eq!(devices("qa-bot", &password).await, 200);
    assert_eq!(devices("qa-bot", "not-the-password").await, 401);

    // Against the relay, with the account's key.
    let url = relay.url.clone();
    let second = cli(
        &["users", "create", "--url", &url, "--login", "qa-bot-2"],
        Some(&key),
    );
    assert!(second["password"].as_str().is_some());
    let listed = cli(&["users", "list", "--url", &url], Some(&key));
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
    assert!(
        !listed.to_string().contains(&password),
        "passwords are not listed"
    );
    cli(
        &[
            "users",
            "delete",
            "--data",
            data,
            "qa-bot",
            "--account",
            &account,
        ],
        None,
    );
    assert_eq!(devices("qa-bot", &password).await, 401);
    let all = cli(&["users", "list", "--data", data], Some(&admin));
    assert_eq!(all["items"].as_array().map(Vec::len), Some(1));
    relay.stop();
}

//! Settling `--auth` at start: refusing an unsafe or incomplete setup
//! with a message that names the flag to set, reading the session key,
//! and, in `local` mode, the first admin (from the environment) or the
//! one-time code that opens `/setup`.

use std::time::Duration;

use common::api::UserId;
use common::config::Secret;
use tokio_util::sync::CancellationToken;

use super::session::{MIN_KEY_BYTES, SessionKey, hex};
use super::{Auth, Mode, pages};
use crate::StartError;
use crate::config::Config;
use crate::middletier::Middletier;

/// The admin named by `RSS_ADMIN_USERNAME`, created at start if missing.
#[derive(Debug)]
pub(crate) struct FirstAdmin {
    user: String,
    password: Secret,
}

/// The `Auth` the flags describe, and the first admin to create.
pub(crate) fn settings(config: &Config) -> Result<(Auth, Option<FirstAdmin>), StartError> {
    let header = config
        .auth_proxy_header
        .clone()
        .filter(|h| !h.trim().is_empty());
    let mode = config.auth.unwrap_or(if header.is_some() {
        Mode::Proxy
    } else {
        Mode::None
    });
    match mode {
        Mode::None if !is_loopback(&config.server.host) => {
            return Err(StartError::Auth(format!(
                "the edge would listen on {}, beyond this machine, with --auth none, where everyone who reaches it is the one user `default`; set --auth local (accounts with passwords; env RSS_AUTH=local), or --auth proxy with --auth-proxy-header behind an authenticating proxy, or listen on 127.0.0.1 (--host)",
                config.server.host
            )));
        }
        Mode::Proxy if header.is_none() => {
            return Err(StartError::Auth(
                "--auth proxy needs the header the proxy names the user in: set --auth-proxy-header (env RSS_AUTH_PROXY_HEADER), e.g. X-Forwarded-User".into(),
            ));
        }
        _ => {}
    }
    let key = session_key(config, mode)?;
    let first_admin = match mode {
        Mode::Local => first_admin(config)?,
        _ => None,
    };
    let setup_code = (mode == Mode::Local && first_admin.is_none())
        .then(setup_code)
        .transpose()?;
    match (mode, &setup_code) {
        (Mode::Proxy, _) => {
            tracing::info!(header = ?header, trusted = ?config.trusted_proxies, "users are named by the authenticating proxy")
        }
        (Mode::Local, Some(code)) => tracing::warn!(
            "no admin is configured (RSS_ADMIN_USERNAME); while no account exists, open /setup and give this setup code: {code}"
        ),
        _ => tracing::info!(mode = mode.as_str(), "users"),
    }
    Ok((Auth::new(mode, header, key, setup_code), first_admin))
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn session_key(config: &Config, mode: Mode) -> Result<SessionKey, StartError> {
    if let Some(path) = &config.session_key_file {
        let contents = std::fs::read(path).map_err(|e| {
            StartError::Auth(format!(
                "the session key file {} cannot be read ({e}); check --session-key-file / RSS_SESSION_KEY_FILE",
                path.display()
            ))
        })?;
        return SessionKey::from_file_contents(&contents).ok_or_else(|| {
            StartError::Auth(format!(
                "the session key file {} holds less than {MIN_KEY_BYTES} bytes; fill it with random ones, e.g. `head -c 48 /dev/urandom | base64 > {}`",
                path.display(),
                path.display()
            ))
        });
    }
    if mode == Mode::Local {
        tracing::warn!(
            "no --session-key-file: sessions are signed with a random key, so they end when this edge restarts and work on this edge only"
        );
    }
    SessionKey::random()
        .map_err(|e| StartError::Auth(format!("no randomness for a session key: {e}")))
}

fn first_admin(config: &Config) -> Result<Option<FirstAdmin>, StartError> {
    let Some(user) = config
        .admin_username
        .clone()
        .filter(|u| !u.trim().is_empty())
    else {
        return Ok(None);
    };
    let password = match (&config.admin_password_file, &config.admin_password) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                StartError::Auth(format!(
                    "the admin's password file {} cannot be read ({e}); check RSS_ADMIN_PASSWORD_FILE",
                    path.display()
                ))
            })?;
            // A file's final newline is not part of the password.
            Secret::new(text.trim_end_matches(['\n', '\r']))
        }
        (None, Some(password)) if !password.expose().is_empty() => password.clone(),
        (None, _) => {
            return Err(StartError::Auth(format!(
                "RSS_ADMIN_USERNAME is {user} but no password is given: set RSS_ADMIN_PASSWORD_FILE (or RSS_ADMIN_PASSWORD)"
            )));
        }
    };
    UserId::parse(user.trim()).map_err(|e| {
        StartError::Auth(format!(
            "RSS_ADMIN_USERNAME: {e}; use 1 to 64 letters, digits and . _ @ -"
        ))
    })?;
    super::password::check_new(password.expose())
        .map_err(|e| StartError::Auth(format!("the admin's password: {e}")))?;
    Ok(Some(FirstAdmin { user, password }))
}

/// The one-time code for `/setup`: 80 random bits, in hex.
fn setup_code() -> Result<String, StartError> {
    let mut bytes = [0u8; 10];
    getrandom::fill(&mut bytes)
        .map_err(|e| StartError::Auth(format!("no randomness for a setup code: {e}")))?;
    Ok(hex(&bytes))
}

impl FirstAdmin {
    /// Creates the admin once the middletier answers; an existing account
    /// of that name is left as it is (its password may have been changed).
    pub(crate) async fn create(self, middletier: Middletier, shutdown: CancellationToken) {
        let account = match pages::new_account(&self.user, self.password.expose(), true).await {
            Ok(account) => account,
            Err(e) => {
                tracing::error!(error = %e, "the first admin cannot be created");
                return;
            }
        };
        loop {
            match middletier.create_account(&account).await {
                Ok(true) => {
                    tracing::info!(user = %account.user, "created the first admin");
                    return;
                }
                Ok(false) => {
                    tracing::info!(user = %account.user, "the first admin exists already");
                    return;
                }
                Err(e) => {
                    tracing::info!(error = %e, "waiting for the middletier to create the first admin")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("edge").chain(args.iter().copied())).unwrap()
    }

    fn refusal(args: &[&str]) -> String {
        match settings(&config(args)) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{args:?} was accepted"),
        }
    }

    #[test]
    fn none_is_for_loopback_only_and_names_the_flags() {
        assert!(settings(&config(&[])).is_ok());
        assert!(settings(&config(&["--host", "::1"])).is_ok());
        assert!(settings(&config(&["--host", "localhost"])).is_ok());
        let refused = refusal(&["--host", "0.0.0.0"]);
        assert!(refused.contains("--auth local"), "{refused}");
        assert!(refusal(&["--host", "192.168.1.5", "--auth", "none"]).contains("--auth"));
    }

    #[test]
    fn proxy_and_local_may_listen_anywhere() {
        let (auth, _) = settings(&config(&[
            "--host",
            "0.0.0.0",
            "--auth-proxy-header",
            "X-User",
        ]))
        .unwrap();
        assert_eq!(auth.mode, Mode::Proxy, "the header alone means proxy");
        let (auth, admin) = settings(&config(&["--host", "0.0.0.0", "--auth", "local"])).unwrap();
        assert_eq!(auth.mode, Mode::Local);
        assert!(admin.is_none());
        assert!(auth.setup.is_some(), "no admin: /setup opens with a code");
        assert!(refusal(&["--auth", "proxy"]).contains("--auth-proxy-header"));
    }

    #[test]
    fn the_first_admin_needs_a_valid_name_and_password() {
        let (auth, admin) = settings(&config(&[
            "--auth",
            "local",
            "--admin-username",
            "root",
            "--admin-password",
            "a long password",
        ]))
        .unwrap();
        assert!(admin.is_some());
        assert!(
            auth.setup.is_none(),
            "no /setup with an admin from the environment"
        );
        assert!(
            refusal(&["--auth", "local", "--admin-username", "root"])
                .contains("RSS_ADMIN_PASSWORD")
        );
        assert!(
            refusal(&[
                "--auth",
                "local",
                "--admin-username",
                "../x",
                "--admin-password",
                "long enough"
            ])
            .contains("RSS_ADMIN_USERNAME")
        );
        assert!(
            refusal(&[
                "--auth",
                "local",
                "--admin-username",
                "root",
                "--admin-password",
                "short"
            ])
            .contains("at least 8")
        );
    }

    #[test]
    fn a_short_key_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("rss-key-{}", std::process::id()));
        std::fs::write(&dir, "short").unwrap();
        let path = dir.to_str().unwrap();
        assert!(refusal(&["--auth", "local", "--session-key-file", path]).contains("32 bytes"));
        std::fs::write(&dir, "k".repeat(40)).unwrap();
        assert!(settings(&config(&["--auth", "local", "--session-key-file", path])).is_ok());
        let _ = std::fs::remove_file(&dir);
    }
}

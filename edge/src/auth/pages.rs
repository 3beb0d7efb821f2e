//! The pages of `--auth local`: signing in and out, the first account
//! (`/setup`), a user's settings (password, app passwords, sign out
//! everywhere) and the admin's list of accounts. Every form carries its
//! CSRF token and works without JavaScript (Post/Redirect/Get, as the
//! reader's own forms).
//!
//! Signing in says one thing for every failure ("wrong user name or
//! password"), takes as long whether or not the account exists (see
//! [`super::password`]), and is throttled per user name and per client
//! address ([`super::throttle`]).

use std::time::Instant;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use chrono::{DateTime, Utc};
use common::api::{Account, UserId};
use serde::Deserialize;

use super::{Auth, Identity, Session, app_password, password, safe_next};
use crate::client::Client;
use crate::error::{CheckedForm, has_csrf};
use crate::message::{message_page, sentence};
use crate::middletier::CallError;
use crate::security::csrf_token;
use crate::state::AppState;
use crate::ui::flash::{Flash, set_flash, take_flash};

/// The one message for every failed sign-in.
const WRONG: &str = "Wrong user name or password.";

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    username: String,
    flash: Option<Flash>,
}

#[derive(Template, WebTemplate)]
#[template(path = "setup.html")]
struct SetupPage {
    csrf: String,
    username: String,
    flash: Option<Flash>,
}

/// An app password as the settings page lists it.
struct AppRow {
    id: String,
    label: String,
    created: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "settings.html")]
struct SettingsPage {
    csrf: String,
    user: String,
    admin: bool,
    flash: Option<Flash>,
    /// A new app password's label and token, shown this once.
    new_secret: Option<(String, String)>,
    app_passwords: Vec<AppRow>,
}

/// An account as the admin's list shows it.
struct AccountRow {
    name: String,
    admin: bool,
    created: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_users.html")]
struct UsersPage {
    csrf: String,
    user: String,
    admin: bool,
    flash: Option<Flash>,
    accounts: Vec<AccountRow>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SetupForm {
    code: String,
    username: String,
    password: String,
    csrf: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenOnly {
    csrf: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PasswordForm {
    current: String,
    new: String,
    csrf: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AppPasswordForm {
    label: String,
    csrf: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewUserForm {
    username: String,
    password: String,
    /// A checkbox: `on` when ticked, absent when not.
    #[serde(default)]
    admin: Option<String>,
    csrf: String,
}

has_csrf!(
    LoginForm,
    SetupForm,
    TokenOnly,
    PasswordForm,
    AppPasswordForm,
    NewUserForm
);

fn date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// A page that could not be made because the middletier could not be
/// asked: said so, with its status.
fn unavailable(what: &str, error: &CallError) -> Response {
    let status = match error {
        CallError::Refused { status, .. } => {
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
        }
        CallError::Unknown => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let text = format!("{what}: {error}. Try again in a moment");
    (status, message_page("Not available right now", &text)).into_response()
}

/// `GET /login`.
pub(crate) async fn login_page(
    client: Client,
    jar: CookieJar,
    identity: Option<Identity>,
    RawQuery(query): RawQuery,
) -> Response {
    let next = safe_next(common::query::param(query.as_deref(), "next").as_deref());
    if identity.is_some() {
        return Redirect::to(&next).into_response();
    }
    let (jar, csrf) = csrf_token(jar, client.https);
    let (jar, flash) = take_flash(jar);
    let page = LoginPage {
        csrf,
        next,
        username: String::new(),
        flash,
    };
    (jar, page).into_response()
}

/// `POST /login`.
pub(crate) async fn login(
    State(state): State<AppState>,
    client: Client,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<LoginForm>,
) -> Response {
    let auth = &state.auth;
    let name = form.username.trim().to_ascii_lowercase();
    let keys = [format!("user:{name}"), format!("ip:{}", client.addr)];
    if let Err(wait) = throttled(auth, &keys) {
        return too_many(wait.as_secs());
    }
    let user = UserId::parse(&name).ok();
    let account = match &user {
        // A fresh read, not the cache: a password just changed elsewhere
        // counts at once.
        Some(user) => match state.middletier.account(user).await {
            Ok(account) => account,
            Err(e) => return unavailable("Signing in is not possible", &e),
        },
        None => None,
    };
    let ok = password::verify(
        form.password.clone(),
        account.as_ref().map(|a| a.password_hash.clone()),
    )
    .await;
    let (Some(user), Some(account), true) = (user, account, ok) else {
        let now = Instant::now();
        let mut throttle = auth.throttle();
        for key in &keys {
            throttle.fail(key, now);
        }
        drop(throttle);
        let (jar, csrf) = csrf_token(jar, client.https);
        let page = LoginPage {
            csrf,
            next: safe_next(form.next.as_deref()),
            username: form.username.chars().take(64).collect(),
            flash: Some(Flash::error(WRONG.to_owned())),
        };
        return (StatusCode::UNAUTHORIZED, jar, page).into_response();
    };
    auth.throttle().clear(&keys[0]);
    auth.remember(&user, Some(account.clone()));
    tracing::info!(%user, "signed in");
    let session = Session::new(user, account.epoch, Utc::now());
    let jar = jar.add(auth.session_cookie(&session, client.https));
    (jar, Redirect::to(&safe_next(form.next.as_deref()))).into_response()
}

/// `Err(wait)` while any of `keys` has failed too often just now.
fn throttled(auth: &Auth, keys: &[String]) -> Result<(), std::time::Duration> {
    let now = Instant::now();
    let mut throttle = auth.throttle();
    keys.iter()
        .map(|key| throttle.check(key, now))
        .max_by_key(|r| r.err())
        .unwrap_or(Ok(()))
}

/// 429, with `Retry-After`.
fn too_many(seconds: u64) -> Response {
    let text = format!(
        "too many failed sign-ins for this user name or from this address; wait {seconds} s and try again"
    );
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        message_page("Too many attempts", &text),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// `POST /logout`: ends this browser's session.
pub(crate) async fn logout(jar: CookieJar, CheckedForm(_): CheckedForm<TokenOnly>) -> Response {
    let jar = jar.add(Auth::cleared_cookie());
    (jar, Redirect::to("/login")).into_response()
}

/// `GET /setup`: the first account, while none exists.
pub(crate) async fn setup_page(
    State(state): State<AppState>,
    client: Client,
    jar: CookieJar,
) -> Response {
    if !state.auth.setup_needed(&state.middletier).await {
        return Redirect::to("/login").into_response();
    }
    let (jar, csrf) = csrf_token(jar, client.https);
    let page = SetupPage {
        csrf,
        username: String::new(),
        flash: None,
    };
    (jar, page).into_response()
}

/// `POST /setup`: creates the first account, an admin, and signs it in.
pub(crate) async fn setup(
    State(state): State<AppState>,
    client: Client,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<SetupForm>,
) -> Response {
    let auth = &state.auth;
    let Some(setup) = &auth.setup else {
        return Redirect::to("/login").into_response();
    };
    if !auth.setup_needed(&state.middletier).await {
        return Redirect::to("/login").into_response();
    }
    let key = [format!("setup:{}", client.addr)];
    if let Err(wait) = throttled(auth, &key) {
        return too_many(wait.as_secs());
    }
    let refuse = |jar: CookieJar, status: StatusCode, text: String| {
        let (jar, csrf) = csrf_token(jar, client.https);
        let page = SetupPage {
            csrf,
            username: form.username.chars().take(64).collect(),
            flash: Some(Flash::error(sentence(&text))),
        };
        (status, jar, page).into_response()
    };
    let code_ok: bool =
        subtle::ConstantTimeEq::ct_eq(form.code.trim().as_bytes(), setup.code.as_bytes()).into();
    if !code_ok {
        auth.throttle().fail(&key[0], Instant::now());
        return refuse(
            jar,
            StatusCode::UNAUTHORIZED,
            "that is not the setup code; copy it from the edge's log (the line that says \"setup code\")".into(),
        );
    }
    let account = match new_account(&form.username, &form.password, true).await {
        Ok(account) => account,
        Err(reason) => return refuse(jar, StatusCode::BAD_REQUEST, reason),
    };
    match state.middletier.create_account(&account).await {
        Ok(true) => {}
        Ok(false) => {
            auth.setup_done();
            return Redirect::to("/login").into_response();
        }
        Err(e) => return unavailable("The account was not created", &e),
    }
    auth.setup_done();
    auth.remember(&account.user, Some(account.clone()));
    tracing::info!(user = %account.user, "the first account was created at /setup");
    let session = Session::new(account.user, account.epoch, Utc::now());
    (
        jar.add(auth.session_cookie(&session, client.https)),
        Redirect::to("/"),
    )
        .into_response()
}

/// A new account from a form: the name checked against the user-id rules
/// and the password hashed; or why not, for the person.
pub(crate) async fn new_account(
    name: &str,
    password: &str,
    admin: bool,
) -> Result<Account, String> {
    let user = UserId::parse(name.trim())
        .map_err(|e| format!("{e}; a user name is 1 to 64 letters, digits and . _ @ -"))?;
    password::check_new(password)?;
    let password_hash = password::hash(password.to_owned())
        .await
        .map_err(|e| format!("the password could not be stored ({e})"))?;
    Ok(Account {
        user,
        password_hash,
        admin,
        epoch: 0,
        created_at: Utc::now(),
        app_passwords: Vec::new(),
    })
}

/// `GET /settings`.
pub(crate) async fn settings_page(
    State(state): State<AppState>,
    who: Identity,
    client: Client,
    jar: CookieJar,
) -> Response {
    settings(&state, &who, &client, jar, None).await
}

/// The settings page, with a new app password to show once.
async fn settings(
    state: &AppState,
    who: &Identity,
    client: &Client,
    jar: CookieJar,
    new_secret: Option<(String, String)>,
) -> Response {
    let account = match state.middletier.account(&who.user).await {
        Ok(Some(account)) => account,
        Ok(None) => return Redirect::to("/login").into_response(),
        Err(e) => return unavailable("Your settings cannot be shown", &e),
    };
    let (jar, csrf) = csrf_token(jar, client.https);
    let (jar, flash) = take_flash(jar);
    let page = SettingsPage {
        csrf,
        user: who.user.to_string(),
        admin: who.admin,
        flash,
        new_secret,
        app_passwords: account
            .app_passwords
            .iter()
            .map(|app| AppRow {
                id: app.id.clone(),
                label: app.label.clone(),
                created: date(app.created_at),
            })
            .collect(),
    };
    (jar, page).into_response()
}

/// Reads the account, changes it, stores it: one change of settings. The
/// change may refuse, with a message for the person.
async fn change_account(
    state: &AppState,
    user: &UserId,
    change: impl FnOnce(&mut Account) -> Result<(), String>,
) -> Result<Account, String> {
    let mut account = match state.middletier.account(user).await {
        Ok(Some(account)) => account,
        Ok(None) => return Err("your account no longer exists".into()),
        Err(e) => return Err(format!("nothing was changed: {e}")),
    };
    change(&mut account)?;
    state
        .middletier
        .update_account(&account)
        .await
        .map_err(|e| format!("nothing was changed: {e}"))?;
    state.auth.remember(user, Some(account.clone()));
    Ok(account)
}

/// Back to `page` with what happened: done, or why not.
fn back_to(page: &str, jar: CookieJar, outcome: Result<String, String>) -> Response {
    let flash = match outcome {
        Ok(text) => Flash::ok(text),
        Err(text) => Flash::error(sentence(&text)),
    };
    (set_flash(jar, &flash), Redirect::to(page)).into_response()
}

/// Back to the settings page with a message.
fn back_to_settings(jar: CookieJar, outcome: Result<String, String>) -> Response {
    back_to("/settings", jar, outcome)
}

/// `POST /settings/password`: checks the current password, stores the new
/// one, and signs out every other session (this one gets a new cookie).
pub(crate) async fn change_password(
    State(state): State<AppState>,
    who: Identity,
    client: Client,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<PasswordForm>,
) -> Response {
    let stored = match state.middletier.account(&who.user).await {
        Ok(account) => account.map(|a| a.password_hash),
        Err(e) => return back_to_settings(jar, Err(format!("nothing was changed: {e}"))),
    };
    if !password::verify(form.current.clone(), stored).await {
        return back_to_settings(
            jar,
            Err("the current password is not right, so nothing was changed".into()),
        );
    }
    if let Err(reason) = password::check_new(&form.new) {
        return back_to_settings(jar, Err(reason));
    }
    let hash = match password::hash(form.new.clone()).await {
        Ok(hash) => hash,
        Err(e) => return back_to_settings(jar, Err(format!("nothing was changed: {e}"))),
    };
    let changed = change_account(&state, &who.user, |account| {
        account.password_hash = hash;
        account.epoch += 1;
        Ok(())
    })
    .await;
    match changed {
        Ok(account) => {
            let session = Session::new(who.user.clone(), account.epoch, Utc::now());
            let jar = jar.add(state.auth.session_cookie(&session, client.https));
            back_to_settings(
                jar,
                Ok("Password changed. Your other sessions are signed out.".into()),
            )
        }
        Err(reason) => back_to_settings(jar, Err(reason)),
    }
}

/// `POST /settings/app-passwords`: a new app password, shown once on the
/// page this answers with (never put in a cookie or a URL).
pub(crate) async fn create_app_password(
    State(state): State<AppState>,
    who: Identity,
    client: Client,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<AppPasswordForm>,
) -> Response {
    let (token, record) = match app_password::issue(&who.user, &form.label) {
        Ok(issued) => issued,
        Err(e) => return back_to_settings(jar, Err(format!("no app password was made: {e}"))),
    };
    let label = record.label.clone();
    let changed = change_account(&state, &who.user, |account| {
        if account.app_passwords.len() >= app_password::MAX_PER_ACCOUNT {
            return Err(format!(
                "you have {} app passwords, the most allowed; revoke one first",
                app_password::MAX_PER_ACCOUNT
            ));
        }
        account.app_passwords.push(record);
        Ok(())
    })
    .await;
    match changed {
        Ok(_) => settings(&state, &who, &client, jar, Some((label, token))).await,
        Err(reason) => back_to_settings(jar, Err(reason)),
    }
}

/// `POST /settings/app-passwords/{id}/delete`: revokes one (on every edge
/// within the account cache's time).
pub(crate) async fn delete_app_password(
    State(state): State<AppState>,
    who: Identity,
    Path(id): Path<String>,
    jar: CookieJar,
    CheckedForm(_): CheckedForm<TokenOnly>,
) -> Response {
    let changed = change_account(&state, &who.user, |account| {
        let before = account.app_passwords.len();
        account.app_passwords.retain(|app| app.id != id);
        if account.app_passwords.len() == before {
            return Err("no such app password; it may have been revoked already".into());
        }
        Ok(())
    })
    .await;
    back_to_settings(jar, changed.map(|_| "App password revoked.".to_owned()))
}

/// `POST /settings/sign-out-everywhere`: raises the epoch, which ends
/// every session of the user, this one too.
pub(crate) async fn sign_out_everywhere(
    State(state): State<AppState>,
    who: Identity,
    jar: CookieJar,
    CheckedForm(_): CheckedForm<TokenOnly>,
) -> Response {
    let changed = change_account(&state, &who.user, |account| {
        account.epoch += 1;
        Ok(())
    })
    .await;
    match changed {
        Ok(_) => {
            tracing::info!(user = %who.user, "signed out everywhere");
            let jar = set_flash(
                jar.add(Auth::cleared_cookie()),
                &Flash::ok("You are signed out everywhere.".into()),
            );
            (jar, Redirect::to("/login")).into_response()
        }
        Err(reason) => back_to_settings(jar, Err(reason)),
    }
}

/// `GET /admin/users` (admins only, checked before this runs).
pub(crate) async fn users_page(
    State(state): State<AppState>,
    who: Identity,
    client: Client,
    jar: CookieJar,
) -> Response {
    let accounts = match state.middletier.accounts().await {
        Ok(accounts) => accounts,
        Err(e) => return unavailable("The accounts cannot be listed", &e),
    };
    let (jar, csrf) = csrf_token(jar, client.https);
    let (jar, flash) = take_flash(jar);
    let page = UsersPage {
        csrf,
        user: who.user.to_string(),
        admin: who.admin,
        flash,
        accounts: accounts
            .into_iter()
            .map(|a| AccountRow {
                name: a.user.to_string(),
                admin: a.admin,
                created: date(a.created_at),
            })
            .collect(),
    };
    (jar, page).into_response()
}

/// Back to the admin's list with a message.
fn back_to_users(jar: CookieJar, outcome: Result<String, String>) -> Response {
    back_to("/admin/users", jar, outcome)
}

/// `POST /admin/users`: adds an account.
pub(crate) async fn create_user(
    State(state): State<AppState>,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<NewUserForm>,
) -> Response {
    let admin = form.admin.is_some_and(|v| !v.is_empty() && v != "off");
    let account = match new_account(&form.username, &form.password, admin).await {
        Ok(account) => account,
        Err(reason) => return back_to_users(jar, Err(format!("no account was added: {reason}"))),
    };
    let result = match state.middletier.create_account(&account).await {
        Ok(true) => {
            state.auth.remember(&account.user, Some(account.clone()));
            tracing::info!(user = %account.user, admin, "account created");
            Ok(format!("Added {}.", account.user))
        }
        Ok(false) => Err(format!(
            "an account named {} already exists; choose another name",
            account.user
        )),
        Err(e) => Err(format!("no account was added: {e}")),
    };
    back_to_users(jar, result)
}

/// `POST /admin/users/{user}/delete`: deletes the user and all their data.
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    who: Identity,
    Path(name): Path<String>,
    jar: CookieJar,
    CheckedForm(_): CheckedForm<TokenOnly>,
) -> Response {
    let Ok(user) = UserId::parse(&name) else {
        return back_to_users(jar, Err(format!("there is no account named {name}")));
    };
    if user == who.user {
        return back_to_users(
            jar,
            Err("you cannot delete your own account here; another admin can".into()),
        );
    }
    let result = match state.middletier.delete_user(&user).await {
        Ok(()) => {
            state.auth.remember(&user, None);
            tracing::info!(%user, by = %who.user, "account deleted");
            Ok(format!("Deleted {user} and all of their data."))
        }
        Err(e) => Err(format!("{user} was not deleted: {e}")),
    };
    back_to_users(jar, result)
}

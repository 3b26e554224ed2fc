//! HTTP Basic authentication as ksqlDB configures it: `authentication.method=BASIC`, a JAAS
//! file whose realm section names a Jetty password file (`user: password[,role …]`), the
//! roles allowed in (`authentication.roles`, `**` for any), and paths open to everyone
//! (`authentication.skip.paths`).
//!
//! Answers as ksqlDB's: a missing or wrong credential is `401` with code `40100` and a
//! `WWW-Authenticate` challenge; a user without an allowed role is `403` with `40300`.
//! Passwords in the file may be plain, `OBF:` (Jetty's obfuscation) or `MD5:`; `CRYPT:`
//! lines are refused at start-up rather than never matching.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use md5::{Digest, Md5};

use crate::ServerError;
use crate::errors::{ApiError, FORBIDDEN, UNAUTHORIZED};

/// The Basic-authentication settings, with ksqlDB's names.
#[derive(Debug, Clone)]
pub struct BasicAuthConfig {
    /// The JAAS file (`java.security.auth.login.config`).
    pub jaas_config: PathBuf,
    /// `authentication.realm`: the JAAS section to use.
    pub realm: String,
    /// `authentication.roles`: a user needs one of them; `**` allows every role.
    pub roles: Vec<String>,
    /// `authentication.skip.paths`: paths served without credentials.
    pub skip_paths: Vec<String>,
}

/// How a password is stored in the password file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stored {
    Plain(String),
    Md5(String),
}

#[derive(Debug, Clone)]
struct User {
    password: Stored,
    roles: Vec<String>,
}

/// The users of a password file and the access rules; checks each request.
#[derive(Debug)]
pub struct Authenticator {
    realm: String,
    roles: Vec<String>,
    skip_paths: Vec<String>,
    users: HashMap<String, User>,
}

/// What a request's credentials amount to.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Allowed,
    Unauthenticated,
    Forbidden,
}

impl Authenticator {
    /// Reads the JAAS file and the password file its realm section names.
    pub fn load(config: &BasicAuthConfig) -> Result<Self, ServerError> {
        let jaas = read(&config.jaas_config)?;
        let file = password_file_of(&jaas, &config.realm).ok_or_else(|| ServerError::Auth {
            path: config.jaas_config.clone(),
            reason: format!(
                "no section '{}' with a PropertyFileLoginModule and a file=\"…\" option \
                 (authentication.realm names the section)",
                config.realm
            ),
        })?;
        let path = PathBuf::from(file);
        let users = parse_password_file(&read(&path)?).map_err(|reason| ServerError::Auth {
            path: path.clone(),
            reason,
        })?;
        Ok(Self {
            realm: config.realm.clone(),
            roles: config.roles.clone(),
            skip_paths: config.skip_paths.clone(),
            users,
        })
    }

    fn verdict(&self, path: &str, authorization: Option<&HeaderValue>) -> Verdict {
        if self.skip_paths.iter().any(|p| p == path) {
            return Verdict::Allowed;
        }
        let Some((name, password)) = authorization.and_then(basic_credentials) else {
            return Verdict::Unauthenticated;
        };
        let Some(user) = self.users.get(&name) else {
            return Verdict::Unauthenticated;
        };
        let matches = match &user.password {
            Stored::Plain(stored) => same(stored.as_bytes(), password.as_bytes()),
            Stored::Md5(hex) => {
                let digest = Md5::digest(password.as_bytes());
                let ours: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                same(hex.to_ascii_lowercase().as_bytes(), ours.as_bytes())
            }
        };
        if !matches {
            return Verdict::Unauthenticated;
        }
        let allowed = self
            .roles
            .iter()
            .any(|r| r == "**" || user.roles.iter().any(|u| u == r));
        if allowed {
            Verdict::Allowed
        } else {
            Verdict::Forbidden
        }
    }
}

/// The middleware that lets only authenticated, authorised requests through.
pub(crate) async fn require_login(
    State(auth): State<Arc<Authenticator>>,
    request: Request,
    next: Next,
) -> Response {
    match auth.verdict(request.uri().path(), request.headers().get(AUTHORIZATION)) {
        Verdict::Allowed => next.run(request).await,
        Verdict::Unauthenticated => {
            let mut response = ApiError::generic(UNAUTHORIZED, "Unauthorized").into_response();
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            if let Ok(challenge) = HeaderValue::from_str(&format!("Basic realm=\"{}\"", auth.realm))
            {
                response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
            }
            response
        }
        Verdict::Forbidden => ApiError::generic(FORBIDDEN, "Forbidden").into_response(),
    }
}

fn read(path: &Path) -> Result<String, ServerError> {
    std::fs::read_to_string(path).map_err(|e| ServerError::Auth {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Compares without stopping at the first difference, so timing tells nothing.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `user:password` of a `Basic` authorization header.
fn basic_credentials(header: &HeaderValue) -> Option<(String, String)> {
    let text = header.to_str().ok()?;
    let (scheme, encoded) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// A JAAS file without its `//` and `/* */` comments (quoted values kept as they are).
fn without_comments(jaas: &str) -> String {
    let mut out = String::with_capacity(jaas.len());
    let mut chars = jaas.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                out.push(c);
            }
            '/' if !quoted && chars.peek() == Some(&'/') => {
                while chars.next_if(|c| *c != '\n').is_some() {}
            }
            '/' if !quoted && chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out
}

/// The `file="…"` option of section `realm` of a JAAS file.
fn password_file_of(jaas: &str, realm: &str) -> Option<String> {
    let jaas = without_comments(jaas);
    let mut rest = jaas.as_str();
    while let Some(open) = rest.find('{') {
        let name = rest[..open]
            .split(['}', ';'])
            .next_back()
            .unwrap_or("")
            .trim();
        let close = rest[open..].find('}')? + open;
        let body = &rest[open + 1..close];
        if name == realm && body.contains("PropertyFileLoginModule") {
            let start = body.find("file")?;
            let after = body[start + 4..]
                .trim_start()
                .strip_prefix('=')?
                .trim_start();
            let quoted = after.strip_prefix('"')?;
            return quoted.split_once('"').map(|(file, _)| file.to_string());
        }
        rest = &rest[close + 1..];
    }
    None
}

/// Jetty's password file: `user: password[,role …]`, `#` comments.
fn parse_password_file(text: &str) -> Result<HashMap<String, User>, String> {
    let mut users = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (name, rest) = line
            .split_once([':', '='])
            .ok_or_else(|| format!("line {}: expected 'user: password[,role …]'", n + 1))?;
        let mut parts = rest.split(',').map(str::trim);
        let credential = parts.next().unwrap_or("");
        let password = if let Some(obfuscated) = credential.strip_prefix("OBF:") {
            Stored::Plain(
                deobfuscate(obfuscated)
                    .ok_or_else(|| format!("line {}: a malformed OBF: password", n + 1))?,
            )
        } else if let Some(hex) = credential.strip_prefix("MD5:") {
            Stored::Md5(hex.to_string())
        } else if credential.starts_with("CRYPT:") {
            return Err(format!(
                "line {}: CRYPT: passwords are not supported; use the plain, OBF: or MD5: form",
                n + 1
            ));
        } else {
            Stored::Plain(credential.to_string())
        };
        users.insert(
            name.trim().to_string(),
            User {
                password,
                roles: parts.filter(|r| !r.is_empty()).map(String::from).collect(),
            },
        );
    }
    Ok(users)
}

/// Reverses Jetty's `Password.obfuscate`: groups of four base-36 digits, or `U` and four
/// digits for a byte above 127.
fn deobfuscate(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut bytes = Vec::with_capacity(chars.len() / 4);
    let mut i = 0;
    while i < chars.len() {
        let high = chars[i] == 'U';
        if high {
            i += 1;
        }
        let group: String = chars.get(i..i + 4)?.iter().collect();
        let value = i64::from_str_radix(&group, 36).ok()?;
        let byte = if high {
            (value >> 8) as u8
        } else {
            ((value / 256 + value % 256 - 254) / 2) as u8
        };
        bytes.push(byte);
        i += 4;
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jetty_obfuscation_reverses_the_documented_example() {
        assert_eq!(
            deobfuscate("1w8t1tvf1w261w8v1w1c1tvn1w8x").as_deref(),
            Some("letmein")
        );
        assert_eq!(deobfuscate("1w8t1"), None);
    }

    #[test]
    fn the_documented_password_file_checks_each_form() -> Result<(), String> {
        let users = parse_password_file(
            "# users\nfred: OBF:1w8t1tvf1w261w8v1w1c1tvn1w8x,user,admin\n\
             harry: changeme,user,developer\n\
             tom: MD5:0d107d09f5bbe40cade3de5c71e9e9b7,user\n",
        )?;
        let auth = Authenticator {
            realm: "KsqlServer-Props".into(),
            roles: vec!["admin".into(), "user".into()],
            skip_paths: vec!["/healthcheck".into()],
            users,
        };
        let basic = |user: &str, password: &str| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            HeaderValue::from_str(&format!("Basic {token}")).ok()
        };
        let check = |user, password| auth.verdict("/ksql", basic(user, password).as_ref());
        assert_eq!(check("fred", "letmein"), Verdict::Allowed);
        assert_eq!(check("fred", "letmeout"), Verdict::Unauthenticated);
        assert_eq!(check("harry", "changeme"), Verdict::Allowed);
        assert_eq!(check("tom", "letmein"), Verdict::Allowed);
        assert_eq!(check("tom", "changeme"), Verdict::Unauthenticated);
        assert_eq!(check("nobody", "x"), Verdict::Unauthenticated);
        assert_eq!(auth.verdict("/ksql", None), Verdict::Unauthenticated);
        assert_eq!(auth.verdict("/healthcheck", None), Verdict::Allowed);
        let admins = Authenticator {
            roles: vec!["admin".into()],
            ..auth
        };
        assert_eq!(
            admins.verdict("/ksql", basic("harry", "changeme").as_ref()),
            Verdict::Forbidden
        );
        Ok(())
    }

    #[test]
    fn crypt_passwords_are_refused_with_their_line() {
        let err = parse_password_file("dick: CRYPT:adpexzg3FUZAk,admin")
            .err()
            .unwrap_or_default();
        assert!(err.contains("line 1") && err.contains("CRYPT"), "{err}");
    }

    #[test]
    fn the_realm_section_names_the_password_file() {
        let jaas = "// users of the REST API\n/* two\n lines */ Other { x.Y required file=\"/nope\"; };\n\
                    // the REST API's users\n\
                    KsqlServer-Props {\n  org.eclipse.jetty.security.jaas.spi.PropertyFileLoginModule required\n  \
                    file=\"/etc/ksql/passwords\" // not \"/x\"\n  debug=\"false\";\n};\n";
        assert_eq!(
            password_file_of(jaas, "KsqlServer-Props").as_deref(),
            Some("/etc/ksql/passwords")
        );
        assert_eq!(password_file_of(jaas, "Missing"), None);
    }
}

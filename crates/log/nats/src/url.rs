//! The `--log` URL of the NATS backend.
//!
//! ```text
//! nats://[user:password@]host[:port][,host[:port]...]     plain TCP
//! tls://[user:password@]host[:port][,...]                 TLS (rustls, the system's roots)
//! nats://token@host:4222                                  token authentication
//! ```
//!
//! Every comma-separated entry is one seed server; the client also learns the rest of a
//! cluster from the servers themselves. An entry without a scheme takes the first entry's.
//! Credentials may sit on any entry (the first ones found apply to all; `%XX` escapes are
//! decoded), and they never appear in [`NatsUrl::redacted`], which is what logs print.

use async_nats::ServerAddr;
use ingot_log::LogError;

/// A parsed NATS URL.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsUrl {
    /// Seed servers as `scheme://host:port`, without credentials.
    pub servers: Vec<String>,
    /// User name and password, if given.
    pub user: Option<(String, String)>,
    /// Token, if given (userinfo without a `:`).
    pub token: Option<String>,
}

impl std::fmt::Debug for NatsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsUrl")
            .field("servers", &self.servers)
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The URL may hold a password: errors name the problem, never the text.
fn invalid(why: &str) -> LogError {
    LogError::Invalid(format!("invalid NATS URL: {why}"))
}

/// Decodes `%XX` escapes.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl NatsUrl {
    /// Parses a URL as described in the module docs.
    pub fn parse(url: &str) -> Result<NatsUrl, LogError> {
        let mut servers = Vec::new();
        let mut user = None;
        let mut token = None;
        let mut first_scheme: Option<String> = None;
        for entry in url.split(',').map(str::trim) {
            if entry.is_empty() {
                return Err(invalid("an empty server entry"));
            }
            let (scheme, rest) = match entry.split_once("://") {
                Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
                None => match &first_scheme {
                    Some(scheme) => (scheme.clone(), entry),
                    None => return Err(invalid("the first server needs nats:// or tls://")),
                },
            };
            if scheme != "nats" && scheme != "tls" {
                return Err(invalid(&format!(
                    "scheme `{scheme}` is neither nats nor tls"
                )));
            }
            first_scheme.get_or_insert_with(|| scheme.clone());
            let authority = rest.split('/').next().unwrap_or_default();
            let host = match authority.rsplit_once('@') {
                Some((info, host)) => {
                    let parsed = match info.split_once(':') {
                        Some((u, p)) => (
                            Some((
                                percent_decode(u)
                                    .ok_or_else(|| invalid("a bad %-escape in the user"))?,
                                percent_decode(p)
                                    .ok_or_else(|| invalid("a bad %-escape in the password"))?,
                            )),
                            None,
                        ),
                        None => (
                            None,
                            Some(
                                percent_decode(info)
                                    .ok_or_else(|| invalid("a bad %-escape in the token"))?,
                            ),
                        ),
                    };
                    if user.is_none() && token.is_none() {
                        user = parsed.0;
                        token = parsed.1;
                    }
                    host
                }
                None => authority,
            };
            if host.is_empty() {
                return Err(invalid("a server without a host"));
            }
            let server = format!("{scheme}://{host}");
            server
                .parse::<ServerAddr>()
                .map_err(|e| invalid(&format!("server `{server}`: {e}")))?;
            servers.push(server);
        }
        Ok(NatsUrl {
            servers,
            user,
            token,
        })
    }

    /// The servers, for messages (no credentials).
    pub fn redacted(&self) -> String {
        self.servers.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seed_lists_and_credentials() {
        let url = NatsUrl::parse("nats://ingot:s%40cret@n1:4222,n2:4222, nats://n3").unwrap();
        assert_eq!(
            url.servers,
            ["nats://n1:4222", "nats://n2:4222", "nats://n3"]
        );
        assert_eq!(url.user, Some(("ingot".into(), "s@cret".into())));
        assert_eq!(url.token, None);
        assert_eq!(url.redacted(), "nats://n1:4222,nats://n2:4222,nats://n3");
        assert!(!format!("{url:?}").contains("cret"));

        let url = NatsUrl::parse("tls://t0ken@nats.example:4443").unwrap();
        assert_eq!(url.servers, ["tls://nats.example:4443"]);
        assert_eq!(url.token.as_deref(), Some("t0ken"));
        assert!(!format!("{url:?}").contains("t0ken"));
    }

    #[test]
    fn refuses_what_is_not_a_nats_url() {
        for bad in [
            "",
            "localhost:4222",
            "http://localhost:4222",
            "nats://",
            "nats://a:4222,,nats://b",
            "nats://u:%zz@h:4222",
            "nats://h:notaport",
        ] {
            let err = NatsUrl::parse(bad).unwrap_err();
            assert!(matches!(err, LogError::Invalid(_)), "{bad}: {err}");
            assert!(!err.to_string().contains("%zz"), "{err}");
        }
    }
}

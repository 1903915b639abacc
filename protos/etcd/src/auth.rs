//! User name and password authentication.
//!
//! etcd's `Auth.Authenticate` trades the credentials for a token, which every
//! later request carries as its `token` gRPC metadata. etcd forgets tokens:
//! a simple token after `--auth-token-ttl` (5 min) without use, when etcd
//! restarts and when auth is disabled; any token when the auth store moves
//! on. A request refused for its token ([`rejects_token`]) makes the client
//! authenticate again, once, and retry; a stream is re-opened.
//!
//! Each token has a *generation*. A request remembers the generation it
//! carried; when it is refused, [`Session::renew`] authenticates only if no
//! other request already did since (a newer generation), so many requests
//! refused at once cost one authentication.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;

use crate::Error;
use crate::etcdserverpb::auth_client::AuthClient;
use crate::etcdserverpb::{AuthenticateRequest, AuthenticateResponse};

/// The gRPC metadata key etcd reads the token from.
pub(crate) const TOKEN_KEY: &str = "token";

/// A user name and password for etcd. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl Credentials {
    /// Credentials of `user`.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials { user: user.into(), password: password.into() }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for AuthenticateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateRequest")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for AuthenticateResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateResponse")
            .field("header", &self.header)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// What requests carry.
#[derive(Clone)]
enum Token {
    /// Not authenticated yet (or the last attempt failed).
    Unknown,
    /// A token etcd gave.
    Given(AsciiMetadataValue),
    /// etcd said authentication is not enabled: requests carry no token
    /// until one is refused for lacking it.
    NotEnabled,
}

/// The token a request carried, and its generation.
#[derive(Clone, Default)]
pub(crate) struct Ticket {
    pub(crate) generation: u64,
    pub(crate) token: Option<AsciiMetadataValue>,
}

/// One client's login: its credentials and current token.
pub(crate) struct Session {
    credentials: Credentials,
    state: Mutex<(u64, Token)>,
    /// Held while authenticating: one authentication at a time.
    renewing: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").field("user", &self.credentials.user).finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(credentials: Credentials) -> Session {
        Session {
            credentials,
            state: Mutex::new((0, Token::Unknown)),
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    fn current(&self) -> (u64, Token) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The token to send, authenticating first if there is none yet.
    pub(crate) async fn ticket(
        &self,
        channel: &Channel,
        timeout: Duration,
    ) -> Result<Ticket, Error> {
        match self.current() {
            (generation, Token::Unknown) => self.renew(channel, timeout, generation).await,
            (generation, token) => Ok(Ticket::new(generation, token)),
        }
    }

    /// Authenticates again, unless the token of generation `refused` was
    /// already replaced; returns the token to retry with.
    pub(crate) async fn renew(
        &self,
        channel: &Channel,
        timeout: Duration,
        refused: u64,
    ) -> Result<Ticket, Error> {
        let _one_at_a_time = self.renewing.lock().await;
        let (generation, token) = self.current();
        if generation != refused && !matches!(token, Token::Unknown) {
            // Another request authenticated meanwhile.
            return Ok(Ticket::new(generation, token));
        }
        tracing::debug!(user = %self.credentials.user, "Authenticating to etcd.");
        let set = |token: Token| {
            *self.state.lock().unwrap_or_else(|e| e.into_inner()) = (generation + 1, token);
        };
        match authenticate(channel.clone(), &self.credentials, timeout).await {
            Ok(token) => {
                set(token.clone());
                Ok(Ticket::new(generation + 1, token))
            }
            Err(e) => {
                // The next request tries again.
                set(Token::Unknown);
                Err(e)
            }
        }
    }
}

impl Ticket {
    fn new(generation: u64, token: Token) -> Ticket {
        match token {
            Token::Given(token) => Ticket { generation, token: Some(token) },
            Token::Unknown | Token::NotEnabled => Ticket { generation, token: None },
        }
    }
}

async fn authenticate(
    channel: Channel,
    credentials: &Credentials,
    timeout: Duration,
) -> Result<Token, Error> {
    let op = "Authenticate";
    let mut request = tonic::Request::new(AuthenticateRequest {
        name: credentials.user.clone(),
        password: credentials.password.clone(),
    });
    request.set_timeout(timeout);
    // Never with a token: etcd checks a stale one even here.
    let mut client = AuthClient::new(channel);
    let call = client.authenticate(request);
    let status = match tokio::time::timeout(timeout, call).await {
        Err(_) => return Err(Error::Timeout { op, timeout }),
        Ok(Ok(r)) => {
            let token = r.into_inner().token;
            if token.is_empty() {
                return Err(Error::Malformed { op, what: "no token" });
            }
            let token = AsciiMetadataValue::try_from(token)
                .map_err(|_| Error::Malformed { op, what: "token is not ASCII" })?;
            return Ok(Token::Given(token));
        }
        Ok(Err(status)) => status,
    };
    let message = status.message();
    if message.contains("authentication is not enabled") {
        Ok(Token::NotEnabled)
    } else if message.contains("authentication failed") {
        Err(Error::AuthFailed { user: credentials.user.clone(), status })
    } else {
        Err(Error::Rpc { op, status })
    }
}

/// etcd's messages for a request whose token is invalid, stale or missing
/// (`rpctypes.ErrGRPCInvalidAuthToken`, `ErrGRPCAuthOldRevision`,
/// `ErrGRPCUserEmpty`).
const TOKEN_REFUSED: &[&str] =
    &["invalid auth token", "revision of auth store is old", "user name is empty"];

/// True when etcd refused a request for its token: authenticating again
/// may help. etcd 3.4 cancels a watch it refuses with "permission denied"
/// even when only the token is at fault, so that counts for watches (a
/// real denial then fails again after one new authentication).
pub(crate) fn rejects_token(error: &Error) -> bool {
    match error {
        Error::Rpc { status, .. } => {
            status.code() == tonic::Code::Unauthenticated
                || TOKEN_REFUSED.iter().any(|m| status.message().contains(m))
        }
        Error::WatchCanceled { reason } => {
            reason.contains("permission denied") || TOKEN_REFUSED.iter().any(|m| reason.contains(m))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;

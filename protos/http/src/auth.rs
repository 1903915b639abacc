//! Mesos HTTP authentication: the `Authorization` header a framework or an
//! executor sends on every request.
//!
//! A framework authenticates with HTTP Basic (`--http_framework_authenticators=basic`
//! on the master: its principal and secret); an executor with the bearer
//! token its agent put in `MESOS_EXECUTOR_AUTHENTICATION_TOKEN`. An
//! [`Authorization`] holds the finished header value, marked sensitive; its
//! `Debug` shows the scheme and the principal, never the credential, and no
//! error of this module repeats one.

use std::fmt;

use base64::Engine as _;
use http::HeaderValue;

/// Why credentials cannot be sent. No variant carries the secret or token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The principal is empty.
    #[error("the principal is empty")]
    EmptyPrincipal,
    /// HTTP Basic cannot carry a principal with a `:` (RFC 7617), nor
    /// control characters.
    #[error("the principal `{0}` contains a `:` or a control character")]
    InvalidPrincipal(String),
    /// The secret or token is empty.
    #[error("the {0} is empty")]
    Empty(&'static str),
    /// A bearer token must be a valid header value (no control characters).
    #[error("the {0} contains characters an HTTP header cannot carry")]
    InvalidCharacters(&'static str),
}

/// The scheme of an [`Authorization`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// HTTP Basic: a principal and its secret.
    Basic,
    /// A bearer token.
    Bearer,
}

/// An `Authorization` header value. Cloning it is cheap; `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization {
    scheme: Scheme,
    principal: Option<String>,
    value: HeaderValue,
}

impl Authorization {
    /// HTTP Basic credentials: `Basic base64(principal:secret)`.
    pub fn basic(principal: &str, secret: &str) -> Result<Authorization, AuthError> {
        if principal.is_empty() {
            return Err(AuthError::EmptyPrincipal);
        }
        if principal.contains(|c: char| c == ':' || c.is_control()) {
            return Err(AuthError::InvalidPrincipal(principal.to_owned()));
        }
        if secret.is_empty() {
            return Err(AuthError::Empty("secret"));
        }
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{principal}:{secret}"));
        // Base64 is always a valid header value.
        let value = HeaderValue::try_from(format!("Basic {encoded}"))
            .map_err(|_| AuthError::InvalidCharacters("secret"))?;
        Ok(Authorization::sensitive(Scheme::Basic, Some(principal.to_owned()), value))
    }

    /// A bearer token: `Bearer <token>`.
    pub fn bearer(token: &str) -> Result<Authorization, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Empty("token"));
        }
        let value = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| AuthError::InvalidCharacters("token"))?;
        Ok(Authorization::sensitive(Scheme::Bearer, None, value))
    }

    fn sensitive(scheme: Scheme, principal: Option<String>, mut value: HeaderValue) -> Self {
        value.set_sensitive(true);
        Authorization { scheme, principal, value }
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The principal of Basic credentials.
    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    /// The header value (marked sensitive: `http`'s `Debug` hides it too).
    pub fn header_value(&self) -> &HeaderValue {
        &self.value
    }
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Authorization");
        d.field("scheme", &self.scheme);
        if let Some(p) = &self.principal {
            d.field("principal", p);
        }
        d.field("credential", &"<redacted>").finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_base64_of_principal_colon_secret() {
        let a = Authorization::basic("drover", "s3cret-XYZ").unwrap();
        // printf 'drover:s3cret-XYZ' | base64
        assert_eq!(a.header_value(), "Basic ZHJvdmVyOnMzY3JldC1YWVo=");
        assert_eq!(a.scheme(), Scheme::Basic);
        assert_eq!(a.principal(), Some("drover"));
        assert!(a.header_value().is_sensitive());
        // Any byte of a secret survives the encoding, colons included.
        let b = Authorization::basic("p", "a:b\u{e9}\n").unwrap();
        let encoded = b.header_value().to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        assert_eq!(decoded, "p:a:b\u{e9}\n".as_bytes());
    }

    #[test]
    fn bearer_tokens_are_sent_as_they_are() {
        let a = Authorization::bearer("eyJhbGciOi.x.y").unwrap();
        assert_eq!(a.header_value(), "Bearer eyJhbGciOi.x.y");
        assert_eq!((a.scheme(), a.principal()), (Scheme::Bearer, None));
        assert!(a.header_value().is_sensitive());
    }

    #[test]
    fn debug_never_shows_the_credential() {
        let basic = Authorization::basic("drover", "s3cret-XYZ").unwrap();
        let shown = format!("{basic:?} {basic:#?}");
        assert!(shown.contains("drover") && shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("s3cret") && !shown.contains("ZHJvdmVy"), "{shown}");
        let bearer = Authorization::bearer("tok-123").unwrap();
        let shown = format!("{bearer:?} {:?}", bearer.header_value());
        assert!(!shown.contains("tok-123"), "{shown}");
        assert_eq!(
            format!("{bearer:?}"),
            r#"Authorization { scheme: Bearer, credential: "<redacted>" }"#
        );
        // A request carrying it does not show it either.
        let req = http::Request::post("http://m/api/v1/scheduler")
            .header(http::header::AUTHORIZATION, basic.header_value().clone())
            .body(())
            .unwrap();
        let shown = format!("{req:?}");
        assert!(!shown.contains("ZHJvdmVy") && shown.contains("Sensitive"), "{shown}");
    }

    #[test]
    fn bad_credentials_are_errors_that_do_not_repeat_the_secret() {
        assert_eq!(Authorization::basic("", "x"), Err(AuthError::EmptyPrincipal));
        assert_eq!(
            Authorization::basic("a:b", "x"),
            Err(AuthError::InvalidPrincipal("a:b".into()))
        );
        assert!(matches!(Authorization::basic("a\nb", "x"), Err(AuthError::InvalidPrincipal(_))));
        assert_eq!(Authorization::basic("p", ""), Err(AuthError::Empty("secret")));
        assert_eq!(Authorization::bearer(""), Err(AuthError::Empty("token")));
        let err = Authorization::bearer("tok\nen-secret").unwrap_err();
        assert_eq!(err, AuthError::InvalidCharacters("token"));
        assert!(!err.to_string().contains("en-secret"), "{err}");
    }
}

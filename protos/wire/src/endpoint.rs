//! Where a Mesos API lives: scheme, authority and path.

use std::fmt;

/// An HTTP endpoint of a Mesos master or agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: String,
    /// `host:port`.
    pub authority: String,
    /// The request path, e.g. `/api/v1/scheduler`.
    pub path: String,
}

/// A URL that is not an HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Mesos URL `{0}`: expected http://host:port[/path]")]
pub struct EndpointError(pub String);

impl Endpoint {
    /// Parses `http://host:port[/path]`; when the URL has no path (or `/`),
    /// `default_path` is used.
    pub fn parse(url: &str, default_path: &str) -> Result<Self, EndpointError> {
        let err = || EndpointError(url.to_owned());
        let (scheme, rest) = url.split_once("://").ok_or_else(err)?;
        if scheme != "http" && scheme != "https" {
            return Err(err());
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains(char::is_whitespace) {
            return Err(err());
        }
        let path = if path.is_empty() || path == "/" { default_path } else { path };
        Ok(Endpoint {
            scheme: scheme.to_owned(),
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    /// Resolves a redirect `Location` against this endpoint. Mesos masters
    /// answer `//host:port/api/v1/scheduler` (no scheme), but an absolute URL
    /// or an absolute path is accepted too.
    pub fn resolve_location(&self, location: &str) -> Result<Endpoint, EndpointError> {
        if let Some(rest) = location.strip_prefix("//") {
            return Endpoint::parse(&format!("{}://{}", self.scheme, rest), &self.path);
        }
        if location.starts_with('/') {
            return Ok(Endpoint { path: location.to_owned(), ..self.clone() });
        }
        Endpoint::parse(location, &self.path)
    }

    /// The full URL.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.path)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_master_urls() {
        let e = Endpoint::parse("http://127.0.0.1:5050", "/api/v1/scheduler").unwrap();
        assert_eq!(e.url(), "http://127.0.0.1:5050/api/v1/scheduler");
        let e = Endpoint::parse("http://m:5050/master/api/v1/scheduler", "/x").unwrap();
        assert_eq!(e.path, "/master/api/v1/scheduler");
        assert!(Endpoint::parse("127.0.0.1:5050", "/").is_err());
        assert!(Endpoint::parse("ftp://a:1", "/").is_err());
        assert!(Endpoint::parse("http:///x", "/").is_err());
    }

    #[test]
    fn resolves_scheme_relative_redirects() {
        let e = Endpoint::parse("http://a:5050", "/api/v1/scheduler").unwrap();
        let r = e.resolve_location("//b:5051/api/v1/scheduler").unwrap();
        assert_eq!(r.url(), "http://b:5051/api/v1/scheduler");
        let r = e.resolve_location("//b:5051").unwrap();
        assert_eq!(r.url(), "http://b:5051/api/v1/scheduler");
        let r = e.resolve_location("/master/api/v1/scheduler").unwrap();
        assert_eq!(r.url(), "http://a:5050/master/api/v1/scheduler");
        let r = e.resolve_location("https://c:1/p").unwrap();
        assert_eq!(r.url(), "https://c:1/p");
        assert!(e.resolve_location("garbage").is_err());
    }
}

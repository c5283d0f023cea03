//! Who may change the cluster through the admin port: the checks every request passes before
//! its endpoint runs.
//!
//! Reads (`GET`, `HEAD`) are open. A request that changes the cluster must come from a tool,
//! not a web page: it carries the [`ADMIN_REQUEST_HEADER`] header, no `Origin` and no
//! cross-site `Sec-Fetch-Site` (a page cannot send a custom header to another origin without
//! a CORS preflight, which this listener never grants, and a browser marks every cross-site or
//! DNS-rebound POST with its `Origin`). It must also present an admin credential when the
//! node has one to check: the admin token (`Authorization: Bearer <token>`, compared in
//! constant time), or, on a node with TLS, a client certificate of the cluster CA (verified by
//! the TLS handshake). A node with neither serves such requests on a loopback admin address
//! only (`ppdb start` refuses another without `--insecure`).

use crate::transport::tls::CertificateIdentity;
use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The header a request that changes the cluster must carry (`ppdb cluster` sends it).
pub const ADMIN_REQUEST_HEADER: &str = "x-ppdb-admin";
/// Largest request body (no endpoint reads one).
pub const ADMIN_BODY_BYTES_MAX: usize = 64 * 1024;

/// The admin credentials a node checks.
#[derive(Debug, Clone, Default)]
pub struct AdminPolicy {
    /// The admin token (`--admin-token`), if the node has one.
    pub token: Option<String>,
    /// Whether the port serves HTTPS, where a client certificate of the cluster CA is a
    /// credential.
    pub certificates: bool,
}

impl AdminPolicy {
    /// Whether a request that changes the cluster must present a credential.
    fn needs_credential(&self) -> bool {
        self.token.is_some() || self.certificates
    }
}

/// What the connection a request came on tells of its client.
#[derive(Debug, Clone, Default)]
pub struct AdminClient {
    /// The certificate it presented in the TLS handshake, verified against the cluster CA.
    pub certificate: Option<CertificateIdentity>,
}

/// Refuses oversized bodies, requests that change the cluster but could have come from a web
/// page, and those without an admin credential (see the module's documentation).
pub async fn refuse_unsafe(policy: Arc<AdminPolicy>, request: Request, next: Next) -> Response {
    let client = request.extensions().get::<AdminClient>().cloned().unwrap_or_default();
    let refused = refusal(request.method(), request.headers())
        .or_else(|| unauthorized(request.method(), request.headers(), &policy, &client));
    match refused {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

/// Refuses what is too large or could come from a web page.
pub fn refusal(method: &Method, headers: &HeaderMap) -> Option<Response> {
    let body_bytes = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if body_bytes.is_some_and(|n| n > ADMIN_BODY_BYTES_MAX as u64) {
        return Some((StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response());
    }
    if is_read(method) {
        return None;
    }
    let forbidden = |why: &str| Some((StatusCode::FORBIDDEN, format!("{why}\n")).into_response());
    if headers.contains_key(header::ORIGIN) {
        return forbidden("refused: a request from a web page (with an Origin) cannot change the cluster");
    }
    if headers.get("sec-fetch-site").is_some_and(|site| site != "none") {
        return forbidden("refused: a request from a web page cannot change the cluster");
    }
    if !headers.contains_key(ADMIN_REQUEST_HEADER) {
        return forbidden("refused: a request that changes the cluster must carry the X-PPDB-Admin header (ppdb cluster sends it)");
    }
    None
}

fn is_read(method: &Method) -> bool {
    *method == Method::GET || *method == Method::HEAD
}

/// Refuses a request that changes the cluster without an admin credential the node accepts.
pub fn unauthorized(
    method: &Method,
    headers: &HeaderMap,
    policy: &AdminPolicy,
    client: &AdminClient,
) -> Option<Response> {
    if is_read(method) || !policy.needs_credential() {
        return None;
    }
    if let Some(certificate) = client.certificate.as_ref().filter(|_| policy.certificates) {
        tracing::info!(subject = %certificate.subject, serial = %certificate.serial_hex,
            "admin request accepted on a client certificate of the cluster CA");
        return None;
    }
    if let Some(token) = &policy.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok()?.strip_prefix("Bearer "))
            .unwrap_or_default();
        if bool::from(presented.as_bytes().ct_eq(token.as_bytes())) {
            return None;
        }
    }
    let mut credentials = Vec::new();
    if policy.token.is_some() {
        credentials.push(
            "the admin token (Authorization: Bearer <token>; ppdb cluster reads it from --admin-token or \
             PPDB_ADMIN_TOKEN)",
        );
    }
    if policy.certificates {
        credentials.push(
            "a client certificate of the cluster CA (ppdb cluster presents the one of --tls-cert-file and \
             --tls-key-file)",
        );
    }
    let why = format!("refused: a request that changes the cluster needs {}\n", credentials.join(" or "));
    Some((StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], why).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn refused_status(method: Method, pairs: &[(&'static str, &'static str)]) -> Option<StatusCode> {
        refusal(&method, &headers(pairs)).map(|response| response.status())
    }

    #[test]
    fn only_a_tool_can_change_the_cluster() {
        assert_eq!(refused_status(Method::GET, &[("origin", "http://evil.example")]), None, "reads are open");
        assert_eq!(refused_status(Method::POST, &[]), Some(StatusCode::FORBIDDEN), "no header");
        let foreign = [(ADMIN_REQUEST_HEADER, "1"), ("origin", "http://evil.example")];
        assert_eq!(refused_status(Method::POST, &foreign), Some(StatusCode::FORBIDDEN));
        let fetched = [(ADMIN_REQUEST_HEADER, "1"), ("sec-fetch-site", "same-origin")];
        assert_eq!(refused_status(Method::POST, &fetched), Some(StatusCode::FORBIDDEN));
        assert_eq!(refused_status(Method::POST, &[(ADMIN_REQUEST_HEADER, "1")]), None);
        let large = [("content-length", "1000000")];
        assert_eq!(refused_status(Method::GET, &large), Some(StatusCode::PAYLOAD_TOO_LARGE));
    }

    #[test]
    fn a_change_needs_the_token_or_a_certificate_of_the_ca() {
        let certificate = CertificateIdentity {
            subject: "CN=operator".into(),
            serial_hex: "01".into(),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
        };
        let with_certificate = AdminClient { certificate: Some(certificate) };
        let anonymous = AdminClient::default();
        let bearer = headers(&[("authorization", "Bearer tok3n")]);
        let wrong = headers(&[("authorization", "Bearer wrong")]);
        let status = |policy: &AdminPolicy, headers: &HeaderMap, client: &AdminClient| {
            unauthorized(&Method::POST, headers, policy, client).map(|response| response.status())
        };
        let open = AdminPolicy::default();
        assert_eq!(status(&open, &HeaderMap::new(), &anonymous), None, "no credential to check");
        let token_only = AdminPolicy { token: Some("tok3n".into()), certificates: false };
        assert_eq!(status(&token_only, &bearer, &anonymous), None);
        assert_eq!(status(&token_only, &wrong, &anonymous), Some(StatusCode::UNAUTHORIZED));
        let tls_only = AdminPolicy { token: None, certificates: true };
        assert_eq!(status(&tls_only, &HeaderMap::new(), &anonymous), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(status(&tls_only, &HeaderMap::new(), &with_certificate), None);
        let both = AdminPolicy { token: Some("tok3n".into()), certificates: true };
        assert_eq!(status(&both, &bearer, &anonymous), None, "the token still works with TLS");
        assert_eq!(status(&both, &wrong, &with_certificate), None);
        assert_eq!(status(&both, &wrong, &anonymous), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(
            unauthorized(&Method::GET, &HeaderMap::new(), &both, &anonymous).map(|r| r.status()),
            None
        );
    }
}

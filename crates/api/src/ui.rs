//! The web UI, embedded in the binary: `GET /` and the files of `crates/api/ui/`.
//!
//! `crates/api/ui/` is the committed output of `npm run build` in `dashboard/` (sources,
//! lockfile and the decision record `docs/decisions/0007-dashboard.md` live there); the
//! build script turns it into a table of `include_bytes!`, so a fresh clone builds with
//! cargo alone and the running server reads no file and fetches nothing.
//!
//! - Files under `/assets/` have content hashes in their names: they are cached for a
//!   year (`immutable`). Everything else (`index.html`) is revalidated on every load
//!   (`no-cache` with an ETag, answered 304 when unchanged).
//! - A gzip copy made at build time is sent to clients that accept it.
//! - The UI's own routes (`/discover`, `/series`, `/dashboards/...`, `/devices/...`,
//!   `/signin`) answer `index.html`, so a deep link or a reload works; any other unknown
//!   path, `/api/...` included, still gets the API's JSON 404.
//! - The HTML carries a Content-Security-Policy that allows this origin only: nothing can
//!   be loaded from elsewhere, even by mistake.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::ops;

/// One embedded file.
#[derive(Debug)]
struct Asset {
    /// Its URL path (`/assets/index-3f2a.js`).
    path: &'static str,
    media_type: &'static str,
    /// A quoted hash of the bytes.
    etag: &'static str,
    bytes: &'static [u8],
    /// The same bytes gzipped, when that is smaller.
    gzip: Option<&'static [u8]>,
}

static ASSETS: &[Asset] = &include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// First path segments that belong to the UI's client-side router.
const UI_ROUTES: [&str; 5] = ["discover", "series", "dashboards", "devices", "signin"];

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// `GET /`: the UI's page.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    match find("/index.html") {
        Some(asset) => serve(asset, &headers),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "this build of ingot has no web UI: run `npm run build` in dashboard/ and rebuild",
        )
            .into_response(),
    }
}

/// Everything no route matched: an embedded file, a UI route, or the JSON 404.
pub(crate) async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method == Method::GET || method == Method::HEAD {
        let path = uri.path();
        if let Some(asset) = find(path).filter(|a| a.path != "/index.html") {
            return serve(asset, &headers);
        }
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        if UI_ROUTES.contains(&first) {
            return index(headers).await;
        }
    }
    ops::not_found(method, uri).await.into_response()
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn serve(asset: &'static Asset, request: &HeaderMap) -> Response {
    let immutable = asset.path.starts_with("/assets/");
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.media_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if asset.media_type.starts_with("text/html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    if asset.gzip.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    let unchanged = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == asset.etag || tag.strip_prefix("W/") == Some(asset.etag) || tag == "*"
        });
    if unchanged {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let body = match asset.gzip {
        Some(packed) if accepts_gzip(request) => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            packed
        }
        _ => asset.bytes,
    };
    (headers, Body::from(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_ui_is_embedded() {
        let index = find("/index.html").expect("crates/api/ui/index.html is embedded");
        assert!(index.media_type.starts_with("text/html"));
        let html = std::str::from_utf8(index.bytes).unwrap();
        // Every file the page names is embedded, and nothing comes from elsewhere.
        for part in html
            .split(['"', '\''])
            .filter(|p| p.starts_with("/assets/"))
        {
            let asset = find(part).unwrap_or_else(|| panic!("{part} is not embedded"));
            assert!(!asset.media_type.starts_with("application/octet-stream"));
        }
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(
            ASSETS
                .iter()
                .any(|a| a.path.ends_with(".js") && a.gzip.is_some())
        );
    }

    #[test]
    fn gzip_is_negotiated() {
        assert!(accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "gzip, deflate, br"
        )])));
        assert!(accepts_gzip(&headers(&[(header::ACCEPT_ENCODING, "*")])));
        assert!(!accepts_gzip(&headers(&[(header::ACCEPT_ENCODING, "br")])));
        assert!(!accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "gzip;q=0, br"
        )])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn assets_are_cached_and_routes_fall_back() {
        let index = index(headers(&[(header::ACCEPT_ENCODING, "gzip")])).await;
        assert_eq!(index.status(), StatusCode::OK);
        assert_eq!(index.headers()[header::CACHE_CONTROL], "no-cache");
        assert_eq!(index.headers()[header::CONTENT_ENCODING], "gzip");
        assert!(
            index
                .headers()
                .contains_key(header::CONTENT_SECURITY_POLICY)
        );
        let etag = index.headers()[header::ETAG].to_str().unwrap().to_owned();
        let again = super::index(headers(&[(header::IF_NONE_MATCH, &etag)])).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

        let script = ASSETS
            .iter()
            .find(|a| a.path.starts_with("/assets/") && a.path.ends_with(".js"))
            .expect("a hashed script");
        let uri: Uri = script.path.parse().unwrap();
        let response = fallback(Method::GET, uri, HeaderMap::new()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(!response.headers().contains_key(header::CONTENT_ENCODING));

        for route in [
            "/discover",
            "/dashboards/fleet-overview",
            "/devices/probe-7",
        ] {
            let response = fallback(Method::GET, route.parse().unwrap(), HeaderMap::new()).await;
            assert_eq!(response.status(), StatusCode::OK, "{route}");
            assert!(
                response.headers()[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            );
        }
        for (method, path) in [
            (Method::GET, "/nope"),
            (Method::GET, "/api/v1/nope"),
            (Method::GET, "/assets/missing.js"),
            (Method::POST, "/discover"),
        ] {
            let response = fallback(method.clone(), path.parse().unwrap(), HeaderMap::new()).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "application/json",
                "{path}"
            );
        }
    }
}

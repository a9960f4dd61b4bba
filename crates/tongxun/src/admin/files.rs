//! The Admin UI's page, served from the built files of the npm package `@socket.io/admin-ui`
//! (its `ui/dist` folder), so that it works where the hosted UI cannot be reached.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, Request};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use tower::ServiceExt as _;
use tower_http::services::ServeDir;

/// Where the page links its icon font; the copy served beside it replaces it.
const ICONS_LINK: &str =
    "https://cdn.jsdelivr.net/npm/@mdi/font@latest/css/materialdesignicons.min.css";

/// The Admin UI's files, to mount at a path of the app's choice.
///
/// The package's page loads its fonts from the internet: a Google font (left out: the page
/// falls back to the system's sans-serif) and the Material Design icons, which
/// [`icons`](Self::icons) serves from the npm package `@mdi/font` instead, so that the page
/// needs nothing but this server.
///
/// # Examples
/// ```
/// use axum::Router;
/// use tongxun::admin::UiFiles;
///
/// let files = UiFiles::new("node_modules/@socket.io/admin-ui/ui/dist").icons("node_modules/@mdi/font");
/// let routes: Router = files.router("/admin/ui"); // the page at /admin/ui/
/// ```
#[derive(Debug, Clone)]
pub struct UiFiles {
    dist: PathBuf,
    icons: Option<PathBuf>,
}

impl UiFiles {
    /// The files of `dist`: the `ui/dist` folder of the installed `@socket.io/admin-ui`.
    pub fn new(dist: impl Into<PathBuf>) -> Self {
        UiFiles {
            dist: dist.into(),
            icons: None,
        }
    }

    /// Serves the icon font from `dir`, the installed `@mdi/font` package.
    pub fn icons(mut self, dir: impl Into<PathBuf>) -> Self {
        self.icons = Some(dir.into());
        self
    }

    /// The routes under `path` (such as `/admin/ui`): the page at `path/` (`path` redirects
    /// there, as the page links its files relative to itself), its scripts and styles, and the
    /// icons under `path/mdi/`.
    pub fn router(self, path: &str) -> Router {
        let base = path.trim_end_matches('/').to_owned();
        let page = std::fs::read_to_string(self.dist.join("index.html"))
            .map(|html| local_page(&html, self.icons.is_some()))
            .map_err(|e| missing(&self.dist, &e));
        let index = get(move || {
            let page = page.clone();
            async move {
                match page {
                    Ok(html) => Html(html).into_response(),
                    Err(message) => (http::StatusCode::NOT_FOUND, message).into_response(),
                }
            }
        });
        let files = Arc::new(self);
        let file = get(move |UrlPath(file): UrlPath<String>, request: Request| {
            let files = files.clone();
            async move { files.serve(&file, request).await }
        });
        let slash = format!("{base}/");
        let mut router = Router::new()
            .route(&slash, index.clone())
            .route(&format!("{base}/index.html"), index)
            .route(&format!("{base}/{{*file}}"), file);
        if !base.is_empty() {
            router = router.route(
                &base,
                get(move || async move { Redirect::permanent(&slash) }),
            );
        }
        router
    }

    /// One of the page's files, or one of the icons.
    async fn serve(&self, file: &str, request: Request) -> Response {
        let (dir, file) = match (&self.icons, file.strip_prefix("mdi/")) {
            (Some(icons), Some(icon)) => (icons.as_path(), icon),
            _ => (self.dist.as_path(), file),
        };
        let (mut parts, body) = request.into_parts();
        parts.uri = match format!("/{file}").parse() {
            Ok(uri) => uri,
            Err(_) => return http::StatusCode::NOT_FOUND.into_response(),
        };
        match ServeDir::new(dir)
            .oneshot(Request::from_parts(parts, body))
            .await
        {
            Ok(response) => response.into_response(),
            Err(never) => match never {},
        }
    }
}

fn missing(dist: &Path, e: &std::io::Error) -> String {
    tracing::warn!(dist = %dist.display(), "the Admin UI's files are missing: {e}");
    format!(
        "the Admin UI's files are not installed at {} ({e}): install the npm package @socket.io/admin-ui",
        dist.display()
    )
}

/// The package's page, linking the icons served beside it and no font from the internet.
fn local_page(html: &str, icons: bool) -> String {
    let mut page = String::with_capacity(html.len());
    let mut rest = html;
    // Each `<link ...>` to another host is replaced or left out; everything else is kept.
    while let Some(start) = rest.find("<link") {
        page.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('>') else {
            rest = &rest[start..];
            break;
        };
        let link = &rest[start..=start + len];
        if link.contains(ICONS_LINK) {
            if icons {
                page.push_str(&link.replace(ICONS_LINK, "mdi/css/materialdesignicons.min.css"));
            }
        } else if !link.contains("https://") && !link.contains("http://") {
            page.push_str(link);
        }
        rest = &rest[start + len + 1..];
    }
    page.push_str(rest);
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_links_local_icons_and_nothing_outside() {
        let html = r#"<head><link rel="icon" href="favicon.png"><link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto"><link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@mdi/font@latest/css/materialdesignicons.min.css"><link href="css/app.css" rel="stylesheet"></head>"#;
        assert_eq!(
            local_page(html, true),
            r#"<head><link rel="icon" href="favicon.png"><link rel="stylesheet" href="mdi/css/materialdesignicons.min.css"><link href="css/app.css" rel="stylesheet"></head>"#
        );
        assert!(!local_page(html, false).contains("mdi"));
    }
}
